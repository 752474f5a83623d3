"""A locked database or a full disk: the frame is not acknowledged, so nothing is lost; once the fault
clears, it is stored. Two station workers on a shared subscription split the stream without duplicates."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.mqtt_client import mqtt_client
from tests.support.station import running_station
from tests.support.tmpfs import tiny_tmpfs
from tests.unit.test_protocol_frames import frame_props
from yaguar.protocol import Ack
from yaguar.server.simulator import SimAgent
from yaguar.storage.models import Media


def _counter(station, name: str, **labels: str) -> float:
    return station.context.metrics.get_sample_value(name, labels) or 0.0


def test_locked_database_delays_but_loses_nothing(broker, tmp_path, images: Path) -> None:
    dog = (images / "classic" / "dog.jpg").read_bytes()
    workdir = tmp_path / "st"
    with (
        running_station(
            broker, workdir, http=False, storage={"busy_timeout_ms": 100}, ingest={"retry_delay_s": 0.2}
        ) as station,
        mqtt_client(broker, "t") as client,
    ):
        client.subscribe("yaguar/v1/cam-1/ack")
        blocker = sqlite3.connect(workdir / "station.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        client.publish("yaguar/v1/cam-1/frame", dog, frame_props(dog, seq=1))
        time.sleep(1.5)
        assert client.received == [], "a frame was acknowledged while the database was locked"
        assert _counter(station, "yaguar_ingest_commit_failures_total", reason="database_locked") >= 1
        blocker.rollback()
        blocker.close()
        acks = [Ack.model_validate_json(m.payload) for m in client.wait_for(1)]
        assert [(a.seq, a.status) for a in acks] == [(1, "stored")]


def test_station_stopped_while_locked_gets_the_frame_again(broker, tmp_path, images: Path) -> None:
    dog = (images / "classic" / "dog.jpg").read_bytes()
    workdir = tmp_path / "st"
    with mqtt_client(broker, "t") as client:
        client.subscribe("yaguar/v1/cam-1/ack")
        with running_station(broker, workdir, http=False, storage={"busy_timeout_ms": 100}):
            blocker = sqlite3.connect(workdir / "station.db", isolation_level=None)
            blocker.execute("BEGIN EXCLUSIVE")
            client.publish("yaguar/v1/cam-1/frame", dog, frame_props(dog, seq=3))
            time.sleep(1.0)
        blocker.rollback()
        blocker.close()
        assert client.received == []
        # the broker kept the unacknowledged frame in the station's session
        with running_station(broker, workdir, http=False) as station:
            acks = [Ack.model_validate_json(m.payload) for m in client.wait_for(1)]
            assert [(a.seq, a.status) for a in acks] == [(3, "stored")]
            with station.session_factory() as session:
                assert session.scalar(select(func.count(Media.id))) == 1


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    with tiny_tmpfs(tmp_path / "tiny", "2m") as mount:
        yield mount


def test_full_disk_delays_but_loses_nothing(broker, tmp_path, images: Path, tiny_disk: Path) -> None:
    big = (images / "camera-trap" / "2021-05-28_SYFR0041_deer.JPG").read_bytes()  # 1.5 MB
    other = (images / "camera-trap" / "2021-08-08_RCNX0063_fox.JPG").read_bytes()  # 1.6 MB
    with (
        running_station(
            broker,
            tmp_path / "st",
            http=False,
            storage={"media_root": str(tiny_disk)},
            ingest={"retry_delay_s": 0.2},
        ) as station,
        mqtt_client(broker, "t") as client,
    ):
        client.subscribe("yaguar/v1/cam-1/ack")
        client.publish("yaguar/v1/cam-1/frame", big, frame_props(big, seq=1))
        assert [Ack.model_validate_json(m.payload).status for m in client.wait_for(1)] == ["stored"]
        client.publish("yaguar/v1/cam-1/frame", other, frame_props(other, seq=2))  # does not fit
        time.sleep(1.5)
        assert len(client.received) == 1, "a frame that could not be written was acknowledged"
        assert _counter(station, "yaguar_ingest_commit_failures_total", reason="disk_full") >= 1
        assert not list(tiny_disk.glob("*/.*.tmp")), "a partial file was left on the full disk"
        subprocess.run(["mount", "-o", "remount,size=16m", str(tiny_disk)], check=True)  # space is freed
        acks = [Ack.model_validate_json(m.payload) for m in client.wait_for(2)]
        assert [(a.seq, a.status) for a in acks] == [(1, "stored"), (2, "stored")]


def test_two_workers_on_a_shared_subscription_split_the_stream(broker, tmp_path, images: Path) -> None:
    jpegs = [p.read_bytes() for p in sorted((images / "classic").glob("*.jpg"))]
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    media = str(tmp_path / "media")
    storage = {"database_url": db, "media_root": media}
    with (
        running_station(
            broker, tmp_path / "w1", http=False, storage=storage, mqtt={"client_id": "worker-1"}
        ) as one,
        running_station(
            broker, tmp_path / "w2", http=False, storage=storage, mqtt={"client_id": "worker-2"}
        ) as two,
    ):
        agents = [
            SimAgent(f"cam-{i}", broker.host, broker.port, jpegs, burst_size=4).connect() for i in range(4)
        ]
        for _ in range(10):
            for agent in agents:
                agent.publish_burst()
        for agent in agents:
            assert agent.wait_acked(60)
            agent.close()
        with one.session_factory() as session:
            assert session.scalar(select(func.count(Media.id))) == 160
        first = _counter(one, "yaguar_frames_stored_total")
        second = _counter(two, "yaguar_frames_stored_total")
        assert first + second == 160
        assert first > 0 and second > 0, (first, second)
        assert (
            _counter(one, "yaguar_frames_duplicate_total") + _counter(two, "yaguar_frames_duplicate_total")
            == 0
        )
