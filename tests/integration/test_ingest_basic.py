"""Frames from simulated agents through a real Mosquitto into a real station and SQLite file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.station import running_station
from yaguar.server.simulator import SimAgent, load_jpegs
from yaguar.storage.models import Device, Media


@pytest.fixture(scope="module")
def jpegs(images: Path) -> list[bytes]:
    return load_jpegs(images / "classic")


def test_bursts_are_stored_once_and_acked(broker, tmp_path, jpegs) -> None:
    with running_station(broker, tmp_path / "station", http=False) as station:
        agent = SimAgent("cam-01", broker.host, broker.port, jpegs, burst_size=3).connect()
        seqs = agent.publish_burst() + agent.publish_burst()
        assert agent.wait_acked(20), f"not acknowledged: {sorted(agent.pending)}"
        assert [agent.acks[s] for s in seqs] == ["stored"] * 6
        with station.session_factory() as session:
            rows = session.scalars(select(Media).order_by(Media.seq)).all()
            assert [m.seq for m in rows] == seqs
            for media in rows:
                path = station.context.media_root / media.path
                assert hashlib.sha256(path.read_bytes()).hexdigest() == media.sha256
                assert media.captured_at.tzinfo is not None
                assert media.utc_offset_min == -300
                assert media.width > 0 and media.height > 0
            assert session.get(Device, "cam-01").status == "online"
        agent.close()


def test_the_same_frames_three_times_in_shuffled_order_are_stored_once(broker, tmp_path, jpegs) -> None:
    import random

    with running_station(broker, tmp_path / "station", http=False) as station:
        agent = SimAgent("cam-02", broker.host, broker.port, jpegs, burst_size=1).connect()
        frames = []
        for i in range(12):
            payload = jpegs[i % len(jpegs)]
            seq, props = agent.frame(payload, f"ev{i}", 0, 1)
            frames.append((seq, payload, props))
        replay = frames * 3
        random.Random(7).shuffle(replay)
        for seq, payload, props in replay:
            agent.publish(seq, payload, props)
        assert agent.wait_acked(20)
        # wait until all 36 acks arrived, not only the first per seq
        import time

        deadline = time.monotonic() + 10
        while agent.ack_count < 36 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert agent.ack_count == 36
        with station.session_factory() as session:
            assert session.scalar(select(func.count(Media.id))) == 12
            assert sorted(session.scalars(select(Media.seq)).all()) == [f[0] for f in frames]
        agent.close()
