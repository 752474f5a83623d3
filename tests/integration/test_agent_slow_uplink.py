"""A slow uplink: the agent's connection to Mosquitto goes through a local proxy that lets 20 kB/s
through towards the broker. One frame takes ~5 s to upload, more than twice the configured keepalive of
2 s.

- Configured for it (``min_uplink_bytes_per_s``): the agent raises its keepalive to fit its largest
  frame on its slowest uplink; the upload completes on the first connection.
- Uplink slower than configured: the keepalive runs out mid-upload (paho closes the connection); the
  agent doubles its keepalive for the next connection instead of blaming, and quarantining, the frame.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.agent_support import StationDouble, wait_until
from tests.support.broker import Broker
from yaguar.agent.config import MqttConfig
from yaguar.agent.metrics import AgentMetrics
from yaguar.agent.publisher import Publisher
from yaguar.agent.spool import Spool

RATE = 20_000  # bytes per second, agent -> broker


class SlowProxy:
    """TCP proxy on a free port: agent -> broker throttled to ``rate``, broker -> agent at full speed."""

    def __init__(self, target: tuple[str, int], rate: int) -> None:
        self.target = target
        self.rate = rate
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, self.rate), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, rate: int | None) -> None:
        chunk = 1000
        try:
            while data := source.recv(chunk if rate else 65536):
                sink.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()


def spool_one(tmp_path: Path, payload: bytes) -> Spool:
    spool = Spool(tmp_path / "spool", metrics=AgentMetrics())
    spool.put(
        payload,
        device="cam-01",
        capture_id="slow.0",
        event_id="slow",
        burst_index=0,
        burst_size=1,
        captured_at=datetime.now(UTC),
        trigger="test",
    )
    return spool


@pytest.mark.slow
def test_a_slow_upload_outlives_the_keepalive(broker: Broker, tmp_path: Path, images: Path) -> None:
    payload = (images / "misc" / "cat_720p.jpg").read_bytes()  # 105 kB: ~5 s at 20 kB/s
    proxy = SlowProxy((broker.host, broker.port), RATE)
    config = MqttConfig(
        host="127.0.0.1",
        port=proxy.port,
        keepalive_s=2,
        max_frame_bytes=200_000,
        min_uplink_bytes_per_s=5_000,
    )
    assert config.effective_keepalive() >= 2 * len(payload) / RATE
    spool = spool_one(tmp_path, payload)
    with StationDouble(broker) as station:
        publisher = Publisher(spool, config, "cam-01").start()
        started = time.monotonic()
        try:
            assert wait_until(lambda: spool.depth == 0, 40)
        finally:
            publisher.stop()
            proxy.close()
    assert time.monotonic() - started > 2 * config.keepalive_s  # it really was slower than the keepalive
    assert len(station.stored) == 1
    assert spool.metrics.total("yaguar_agent_mqtt_connects") == 1 and proxy.connections == 1  # no reconnect


@pytest.mark.slow
def test_an_uplink_slower_than_configured_raises_the_keepalive(
    broker: Broker, tmp_path: Path, images: Path, caplog: pytest.LogCaptureFixture
) -> None:
    payload = (images / "misc" / "cat_720p.jpg").read_bytes()
    proxy = SlowProxy((broker.host, broker.port), RATE)
    config = MqttConfig(
        host="127.0.0.1",
        port=proxy.port,
        keepalive_s=2,
        max_frame_bytes=200_000,
        min_uplink_bytes_per_s=10**8,
    )
    assert config.effective_keepalive() == 2  # the configuration believes in a fast uplink
    spool = spool_one(tmp_path, payload)
    with StationDouble(broker) as station:
        publisher = Publisher(spool, config, "cam-01").start()
        try:
            assert wait_until(lambda: spool.depth == 0, 50)
        finally:
            publisher.stop()
            proxy.close()
    assert len(station.stored) == 1 and spool.quarantined() == []
    assert proxy.connections >= 2
    assert "keepalive ran out during an upload" in caplog.text
