"""The pipeline as the station runs it: simulated agents publish real frames over a real Mosquitto,
ingest stores them, the pipeline (started by the station from its component list) analyses them."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from sqlalchemy import select

from tests.support.station import running_station
from yaguar.server.simulator import SimAgent
from yaguar.storage.models import Detection, Event, Media


def test_station_analyses_what_agents_send(broker, tmp_path: Path, images: Path, models_dir: Path) -> None:
    frames = [(images / "classic" / name).read_bytes() for name in ("dog.jpg", "eagle.jpg", "scream.jpg")]
    names = {
        hashlib.sha256(data).hexdigest(): name
        for data, name in zip(frames, ("dog.jpg", "eagle.jpg", "scream.jpg"), strict=True)
    }
    pipeline = {
        "enabled": True,
        "model_dir": str(models_dir),
        "skip_without_motion": False,
        "batch_wait_ms": 5,
    }
    with running_station(broker, tmp_path / "station", http=False, pipeline=pipeline) as station:
        component = next(c for c in station.components if c.name == "pipeline")
        assert component.unavailable is None
        committed: list[int] = []
        station.context.hooks.events_committed.append(committed.extend)
        agent = SimAgent("cam-07", broker.host, broker.port, frames, burst_size=3).connect()
        agent.publish_burst()
        assert agent.wait_acked(20)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with station.session_factory() as session:
                states = session.scalars(select(Media.process_state)).all()
            if len(states) == 3 and "pending" not in states:
                break
            time.sleep(0.1)
        agent.close()
        with station.session_factory() as session:
            media = session.scalars(select(Media).order_by(Media.burst_index)).all()
            assert [m.process_state for m in media] == ["done"] * 3
            labels = {
                names[m.sha256]: sorted(
                    set(session.scalars(select(Detection.label).where(Detection.media_id == m.id)).all())
                )
                for m in media
            }
            events = session.scalars(select(Event)).all()
    assert "dog" in labels["dog.jpg"] and labels["eagle.jpg"] == ["bird"] and labels["scream.jpg"] == []
    # one burst, one event: the frames vote for "animal" (dog, bird) over "vehicle" (the bicycle)
    assert len(events) == 1 and events[0].frame_count == 3 and events[0].category == "animal"
    assert {m.event_id for m in media} == {events[0].id} and committed and set(committed) == {events[0].id}
