"""The publisher against a real Mosquitto, with the test playing the station: frames leave the spool
only on the application Ack, rejected ones go to quarantine, the in-flight window holds, a silent
station gets the frames again, and frames too big for the broker are set aside, not lost in a loop."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.agent_support import StationDouble, wait_until
from tests.support.broker import Broker
from yaguar.agent.config import MqttConfig
from yaguar.agent.metrics import AgentMetrics
from yaguar.agent.publisher import Publisher
from yaguar.agent.spool import Spool


def fill(spool: Spool, files: list[Path], event: str = "e1") -> list[int]:
    seqs = []
    for index, path in enumerate(files):
        frame = spool.put(
            path.read_bytes(),
            device="cam-01",
            capture_id=f"{event}.{index}",
            event_id=event,
            burst_index=index,
            burst_size=len(files),
            captured_at=datetime.now(UTC).astimezone(),
            trigger="test",
        )
        assert frame is not None
        seqs.append(frame.seq)
    return seqs


@pytest.fixture
def classic(images: Path) -> list[Path]:
    return sorted((images / "classic").glob("*.jpg"))


def test_frames_leave_the_spool_only_on_the_stations_ack(
    broker: Broker, tmp_path: Path, classic: list[Path]
) -> None:
    spool = Spool(tmp_path / "spool")
    seqs = fill(spool, classic)
    with StationDouble(broker) as station:
        publisher = Publisher(spool, f"{broker.host}:{broker.port}", "cam-01").start()
        try:
            assert publisher.wait_drained(15)
        finally:
            publisher.stop()
        assert sorted(station.stored) == seqs
        for seq, path in zip(seqs, classic, strict=True):
            assert station.stored[seq][1] == path.read_bytes()  # the bytes, unchanged
        assert spool.metrics.total("yaguar_agent_frames_sent") == len(seqs)
        assert wait_until(lambda: [s.state for s in station.statuses][-1:] == ["offline"], 5)
        assert station.statuses[0].state == "online" and station.statuses[0].agent_version


def test_a_puback_alone_does_not_delete_and_a_silent_station_gets_them_again(
    broker: Broker, tmp_path: Path, classic: list[Path]
) -> None:
    spool = Spool(tmp_path / "spool")
    seqs = fill(spool, classic)
    answering = threading.Event()
    config = MqttConfig(host=broker.host, port=broker.port, inflight_window=2, ack_timeout_s=1)
    with StationDouble(broker, answer=lambda meta: "stored" if answering.is_set() else None) as station:
        publisher = Publisher(spool, config, "cam-01").start()
        try:
            assert wait_until(lambda: len(station.arrivals) >= 2, 10)
            # The broker has PUBACKed these, but the station said nothing: nothing leaves the spool,
            # and no more than the window is out at once.
            threading.Event().wait(0.5)
            assert spool.depth == len(seqs)
            assert len(set(station.arrivals)) == 2
            assert publisher.inflight <= 2
            # After the ack timeout the same frames go again.
            assert wait_until(lambda: len(station.arrivals) >= 4, 5)
            assert set(station.arrivals) == set(seqs[:2])
            answering.set()
            assert wait_until(lambda: spool.depth == 0, 15)
        finally:
            publisher.stop()
    assert sorted(station.stored) == seqs


def test_a_rejected_frame_goes_to_quarantine(broker: Broker, tmp_path: Path, classic: list[Path]) -> None:
    spool = Spool(tmp_path / "spool")
    seqs = fill(spool, classic[:3])
    answer = lambda meta: "rejected:clock_in_future" if meta.seq == seqs[1] else "stored"  # noqa: E731
    with StationDouble(broker, answer=answer) as station:
        publisher = Publisher(spool, f"{broker.host}:{broker.port}", "cam-01").start()
        try:
            assert wait_until(lambda: spool.depth == 0, 10)
        finally:
            publisher.stop()
    assert sorted(station.stored) == [seqs[0], seqs[2]]
    assert spool.quarantined() == [(seqs[1], "rejected_clock_in_future")]
    assert spool.metrics.total("yaguar_agent_frames_sent") == 2


def test_a_frame_bigger_than_the_brokers_limit_is_quarantined_not_looped(
    tmp_path: Path, images: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    small = [images / "classic" / "person.jpg", images / "classic" / "dog.jpg"]
    big = images / "jaguar" / "AABP_13_20051007_1205.jpg"  # 1.4 MB
    with (
        Broker(tmp_path / "broker", extra="message_size_limit 300000") as broker,
        StationDouble(broker) as station,
    ):
        spool = Spool(tmp_path / "spool", metrics=AgentMetrics())
        seqs = fill(spool, [small[0], big, small[1]])
        config = MqttConfig(host=broker.host, port=broker.port, reconnect_min_s=0.1, reconnect_max_s=0.3)
        publisher = Publisher(spool, config, "cam-01").start()
        try:
            assert wait_until(lambda: spool.depth == 0, 30)
        finally:
            publisher.stop()
    assert sorted(station.stored) == [seqs[0], seqs[2]]  # the others were not held hostage
    assert spool.quarantined() == [(seqs[1], "broker_closed_connection")]  # kept on disk, not sent
    assert seqs[1] not in station.stored
    assert spool.metrics.total("yaguar_agent_frames_sent") == 2
    assert "quarantined: broker_closed_connection" in caplog.text


def test_a_frame_over_the_stations_limit_is_never_sent(broker: Broker, tmp_path: Path, images: Path) -> None:
    spool = Spool(tmp_path / "spool")
    big = images / "jaguar" / "AABP_13_20051007_1205.jpg"
    seqs = fill(spool, [images / "classic" / "dog.jpg", big])
    config = MqttConfig(host=broker.host, port=broker.port, max_frame_bytes=1_000_000)
    with StationDouble(broker) as station:
        publisher = Publisher(spool, config, "cam-01").start()
        try:
            assert wait_until(lambda: spool.depth == 0, 10)
        finally:
            publisher.stop()
    assert set(station.arrivals) == {seqs[0]}
    assert spool.quarantined() == [(seqs[1], "oversize_payload")]
