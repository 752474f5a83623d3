"""``yaguar-sim``: simulated cameras on the real agent code, into a real station."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.station import running_station
from yaguar.server.simulator import main as sim_main
from yaguar.storage.models import Media

pytestmark = pytest.mark.processes  # one after another under xdist: tests/conftest.py


def test_sim_cameras_reach_the_station_through_the_agent_code(
    broker, tmp_path: Path, images: Path, capsys
) -> None:
    with running_station(broker, tmp_path / "st", http=False) as station:
        rc = sim_main(
            [
                "--broker", f"{broker.host}:{broker.port}", "--agents", "3", "--bursts", "2",
                "--burst-size", "3", "--interval", "0", "--folder", str(images / "classic"), "--timeout", "60",
            ]
        )  # fmt: skip
        assert rc == 0
        with station.session_factory() as session:
            assert session.scalar(select(func.count(Media.id))) == 18
            assert set(session.scalars(select(Media.device_id).distinct()).all()) == {
                "sim-cam-01",
                "sim-cam-02",
                "sim-cam-03",
            }
    assert "18 of 18 frames acknowledged" in capsys.readouterr().err
