"""The same ingest on PostgreSQL: migrations, idempotency on (device, seq), aware times."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import func, select

from tests.support.postgres import postgres_cluster
from tests.support.station import running_station
from yaguar.server.simulator import SimAgent, load_jpegs
from yaguar.storage.models import Media


def test_ingest_on_postgresql(broker, tmp_path: Path, images: Path) -> None:
    jpegs = load_jpegs(images / "classic")
    storage = {"database_url": ""}
    with postgres_cluster() as url:
        storage["database_url"] = url
        with running_station(broker, tmp_path / "st", http=False, storage=storage) as station:
            agent = SimAgent("cam-pg", broker.host, broker.port, jpegs, burst_size=1).connect()
            frames = [(seq, *agent.frame(jpegs[seq], f"ev{seq}", 0, 1)[1:]) for seq in range(len(jpegs))]
            for _ in range(2):  # every frame twice: stored once, then answered as a duplicate
                for seq, props in frames:
                    agent.publish(seq, jpegs[seq], props)
            assert agent.wait_acked(30)
            deadline = time.monotonic() + 10
            while agent.ack_count < 2 * len(frames) and time.monotonic() < deadline:
                time.sleep(0.05)
            agent.close()
            assert agent.ack_count == 2 * len(frames)
            with station.session_factory() as session:
                assert session.scalar(select(func.count(Media.id))) == len(jpegs)
                first = session.scalars(select(Media).order_by(Media.seq)).first()
                assert first.captured_at.utcoffset().total_seconds() == 0
                assert first.utc_offset_min == -300
            stored = station.context.metrics.get_sample_value("yaguar_frames_stored_total")
            duplicates = station.context.metrics.get_sample_value("yaguar_frames_duplicate_total")
            assert (stored, duplicates) == (len(jpegs), len(jpegs))
