"""End to end: a PIR edge (gpiozero MockFactory) -> burst from the replay camera -> spool -> MQTT (real
Mosquitto) -> the real station ingest -> SQLite -> Ack -> the spool is empty, and each frame is in the
station's database exactly once, with the bytes the camera made."""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.integration.agent_support import agent_config, wait_until
from tests.integration.test_agent_faults_crash import SpoolWatcher, write_config
from tests.support.broker import Broker
from tests.support.station import running_station
from yaguar.agent.service import Agent
from yaguar.storage.models import Device, Media

pytestmark = pytest.mark.processes  # one after another under xdist: tests/conftest.py


def test_pir_to_station_database_exactly_once(broker: Broker, tmp_path: Path, images: Path) -> None:
    config = agent_config(
        tmp_path / "agent",
        broker,
        images / "jaguar",
        device_id="cam-e2e",
        pir={"enabled": True, "pin": 17, "holdoff_s": 0.5, "sample_rate": 50},
        capture={"burst_size": 3, "burst_interval_s": 0.1},
    )
    with running_station(broker, tmp_path / "station", http=False) as station:
        agent = Agent(config).start()
        try:
            assert agent.publisher.connected.wait(10)
            pin = agent.pin_factory.pin(17)
            time.sleep(0.2)
            for _ in range(2):  # two animals, past the hold-off: two bursts
                pin.drive_high()
                assert wait_until(lambda: agent.metrics.total("yaguar_agent_triggers") >= 1, 3)
                time.sleep(0.4)
                pin.drive_low()
                time.sleep(0.3)
            assert wait_until(lambda: agent.metrics.total("yaguar_agent_frames_captured") == 6, 10)
            assert wait_until(lambda: agent.spool.depth == 0, 30), f"{agent.spool.depth} frames not acked"
            assert agent.metrics.total("yaguar_agent_frames_sent") == 6
            assert agent.spool.quarantined() == []
            assert agent.send_heartbeat()
        finally:
            agent.stop()

        with station.session_factory() as session:
            rows = session.scalars(
                select(Media).where(Media.device_id == "cam-e2e").order_by(Media.seq)
            ).all()
            per_seq = dict(
                session.execute(
                    select(Media.seq, func.count()).where(Media.device_id == "cam-e2e").group_by(Media.seq)
                ).all()
            )
            assert len(rows) == 6 and set(per_seq.values()) == {1}  # exactly once
            assert [m.seq for m in rows] == sorted(per_seq)
            assert [m.burst_index for m in rows] == [0, 1, 2, 0, 1, 2]
            assert {m.trigger for m in rows} == {"pir"}
            assert len({m.agent_event_id for m in rows}) == 2
            originals = {
                hashlib.sha256(p.read_bytes()).hexdigest() for p in (images / "jaguar").glob("*.jpg")
            }
            for media in rows:
                stored = (station.context.media_root / media.path).read_bytes()
                assert hashlib.sha256(stored).hexdigest() == media.sha256
                assert media.sha256 in originals  # the camera's bytes, unchanged end to end

        def heartbeat_recorded() -> bool:
            with station.session_factory() as session:
                device = session.get(Device, "cam-e2e")
                beat = device.last_heartbeat if device is not None else None
                return bool(beat) and beat.get("frames_sent") == 6 and beat.get("spool_depth") == 0

        assert wait_until(heartbeat_recorded, 10), (
            "the agent's heartbeat did not reach the station's database"
        )


def test_agent_killed_mid_flight_still_exactly_once_in_the_station(
    broker: Broker, tmp_path: Path, images: Path
) -> None:
    """SIGKILL the real `yaguar-agent run` process three times while it captures and publishes to the
    real station; after a clean run drains the spool, every frame that reached the spool is in the
    database once, and nothing else is."""
    spool = tmp_path / "spool"
    config = tmp_path / "agent.toml"
    write_config(config, broker, spool, images / "classic")
    command = [sys.executable, "-m", "yaguar.agent.cli", "--config", str(config), "run"]
    watcher = SpoolWatcher(spool / "pending")
    watcher.start()
    rng = random.Random(11)
    with running_station(broker, tmp_path / "station", http=False) as station:

        def stored_seqs() -> list[int]:
            with station.session_factory() as session:
                return list(session.scalars(select(Media.seq).where(Media.device_id == "cam-01")))

        for _ in range(3):
            before = len(watcher.seen)
            proc = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.DEVNULL)
            # killed while it captures (bursts every 0.1 s), however long its start-up took on a busy machine
            assert wait_until(lambda: len(watcher.seen) > before, 30), "the agent never captured"  # noqa: B023
            time.sleep(rng.uniform(0.0, 0.8))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        proc = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.DEVNULL)
        try:
            captured = set(watcher.seen)
            assert wait_until(lambda: captured <= set(stored_seqs()), 40), "frames lost"
            assert wait_until(lambda: not list((spool / "pending").glob("*.frame")), 20)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        watcher.stop.set()
        seqs = stored_seqs()
        assert len(seqs) == len(set(seqs)) >= len(captured) > 0  # exactly once, none lost
