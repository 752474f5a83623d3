"""End to end for clips: a PIR edge -> the agent's H.264 ring (replay camera of real frames) -> a clip with
pre-roll -> chunks through the crash-safe spool -> real Mosquitto -> the station joins them once ->
the pipeline analyses the clip's frames -> an event and an alert, as for a burst."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import func, select

from tests.integration.agent_support import agent_config, wait_until
from tests.support.broker import Broker
from tests.support.station import running_station
from yaguar.agent.service import Agent
from yaguar.alerts.models import Alert
from yaguar.storage.models import Event, Media


def test_a_pir_clip_reaches_the_station_and_alerts(
    broker: Broker, tmp_path: Path, images: Path, models_dir: Path
) -> None:
    config = agent_config(
        tmp_path / "agent",
        broker,
        images / "jaguar",
        device_id="cam-clip",
        pir={"enabled": True, "pin": 17, "holdoff_s": 30, "sample_rate": 50},
        clips={
            "enabled": True,
            "dir": str(tmp_path / "agent" / "clips"),
            "fps": 10,
            "pre_roll_s": 1.0,
            "post_roll_s": 2.0,
            "width": 640,
            "chunk_bytes": 16 * 1024,
        },
    )
    sections = {
        "ingest": {"clips": True, "clip_sample_s": 0.5},
        "pipeline": {
            "enabled": True,
            "model_dir": str(models_dir),
            "classifiers": [],
            "skip_without_motion": False,
            "batch_wait_ms": 5,
        },
        "alerts": {
            "enabled": True,
            "recipients": [{"name": "ranger", "phone": "+573001234567"}],
            "rules": [{"name": "animals", "categories": ["animal"], "min_confidence": 0.1}],
        },
    }
    with running_station(broker, tmp_path / "station", http=False, **sections) as station:
        receiver = next(c for c in station.components if c.name == "clips")
        assert receiver.link.wait_connected(10)
        agent = Agent(config).start()
        try:
            assert agent.publisher.connected.wait(10)
            time.sleep(1.5)  # the ring fills with a second and a half of frames
            pin = agent.pin_factory.pin(17)
            pin.drive_high()
            assert wait_until(lambda: agent.clips is not None and len(agent.clips.clips) == 1, 20)
            pin.drive_low()
            assert wait_until(lambda: agent.spool.depth == 0, 30), f"{agent.spool.depth} chunks not acked"
            chunks = agent.metrics.total("yaguar_agent_frames_sent")
            assert chunks >= 2 and agent.spool.quarantined() == []

            def analysed() -> bool:
                with station.session_factory() as session:
                    states = session.scalars(
                        select(Media.process_state).where(Media.device_id == "cam-clip")
                    ).all()
                return bool(states) and "pending" not in states

            assert wait_until(analysed, 60)
        finally:
            agent.stop()
        clip = agent.clips.clips[0] if agent.clips else None
        assert clip is not None
        with station.session_factory() as session:
            frames = session.scalars(
                select(Media).where(Media.device_id == "cam-clip").order_by(Media.captured_at)
            ).all()
            assert len(frames) == round(clip.meta["duration_s"] / 0.5 + 0.49)
            assert frames[0].burst_index < 0 <= frames[-1].burst_index  # the pre-roll came along
            assert {m.agent_event_id for m in frames} == {clip.meta["event_id"]}
            events = session.scalars(select(Event).where(Event.device_id == "cam-clip")).all()
            assert len(events) == 1 and events[0].category == "animal"
            assert session.scalar(select(func.count(Alert.id))) >= 1
