"""A real station (ingest, components, HTTP on a free port) against the test broker and a temp SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.broker import Broker
from tests.support.config_files import merged, storage_in
from yaguar.server.config import StationConfig, config_from_dict
from yaguar.server.station import Station

API_TOKEN = "test-token-123"


def station_config(broker: Broker, workdir: Path, **sections: dict[str, Any]) -> StationConfig:
    data = {
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": f"station-{workdir.name}"[:64]},
        "storage": storage_in(workdir),
        "http": {"port": 0, "api_tokens": [API_TOKEN]},
    }
    return config_from_dict(merged(data, sections), env={})


@contextmanager
def running_station(
    broker: Broker, workdir: Path, http: bool = True, **sections: dict[str, Any]
) -> Iterator[Station]:
    """Start a station; ``sections`` override config sections, e.g. ``ingest={"batch_max": 1}``."""
    workdir.mkdir(parents=True, exist_ok=True)
    station = Station(station_config(broker, workdir, **sections), http=http).start()
    try:
        assert station.ingest is not None
        assert station.ingest.link.wait_connected(10), "station did not connect to the test broker"
        yield station
    finally:
        station.stop()
