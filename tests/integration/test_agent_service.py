"""The whole agent against a real broker, the test playing the station: a PIR edge on gpiozero's
MockFactory becomes a burst on the wire; pushed configs are applied or refused (old one kept, reason on
the status topic); the capture command; a failing camera is reported in the heartbeat and retried."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.agent_support import StationDouble, agent_config, wait_until
from tests.support.broker import Broker
from yaguar.agent.config import AgentConfig
from yaguar.agent.service import Agent
from yaguar.protocol.messages import Command
from yaguar.protocol.topics import Kind


@contextmanager
def running(config: AgentConfig) -> Iterator[Agent]:
    agent = Agent(config).start()
    try:
        assert agent.publisher.connected.wait(10), "agent did not connect"
        yield agent
    finally:
        agent.stop()


def test_pir_edge_becomes_a_burst_at_the_station(broker: Broker, tmp_path: Path, images: Path) -> None:
    config = agent_config(
        tmp_path,
        broker,
        images / "jaguar",
        pir={"enabled": True, "pin": 17, "holdoff_s": 5, "sample_rate": 50},
    )
    with StationDouble(broker) as station, running(config) as agent:
        pin = agent.pin_factory.pin(17)
        time.sleep(0.2)
        pin.drive_high()
        time.sleep(0.1)
        pin.drive_low()
        pin.drive_high()  # the same animal again, inside the hold-off: no second burst
        assert wait_until(lambda: len(station.stored) == 3 and agent.spool.depth == 0, 10)
        time.sleep(0.3)
        metas = [station.stored[seq][0] for seq in sorted(station.stored)]
        assert len(station.stored) == 3
        assert [m.burst_index for m in metas] == [0, 1, 2]
        assert {m.trigger for m in metas} == {"pir"} and len({m.event_id for m in metas}) == 1
        assert agent.send_heartbeat()
        assert wait_until(lambda: bool(station.heartbeats), 5)
        beat = station.heartbeats[-1]
        assert (beat.frames_captured, beat.frames_sent, beat.spool_depth) == (3, 3, 0)
        assert beat.camera_ok


def test_pushed_config_is_applied_and_a_bad_one_refused_with_the_reason(
    broker: Broker, tmp_path: Path, images: Path
) -> None:
    config = agent_config(tmp_path, broker, images / "classic")
    with StationDouble(broker) as station, running(config) as agent:
        station.publish(
            Kind.CONFIG, json.dumps({"v": 1, "version": 2, "burst_size": 2}).encode(), retain=True
        )
        assert wait_until(lambda: agent.config.capture.burst_size == 2, 5)
        assert wait_until(lambda: any(s.config_version == 2 for s in station.statuses), 5)
        station.publish(
            Kind.CONFIG, json.dumps({"v": 1, "version": 3, "burst_interval_s": 0.001}).encode(), retain=True
        )
        assert wait_until(lambda: any(s.config_error for s in station.statuses), 5)
        status = next(s for s in station.statuses if s.config_error)
        assert status.state == "online" and status.config_version == 2
        assert "burst_interval_s" in (status.config_error or "")
        assert agent.config.capture.burst_size == 2 and agent.config.capture.burst_interval_s == 0.05
        assert agent.metrics.total("yaguar_agent_config_rejected") == 1
        # The config still in force is used: a capture command gives a burst of 2.
        station.publish(Kind.COMMAND, Command(id="c1", command="capture").to_json())
        assert wait_until(lambda: len(station.stored) == 2 and agent.spool.depth == 0, 10)
        assert {m.trigger for m, _ in station.stored.values()} == {"command"}


def test_retained_config_is_applied_at_start(broker: Broker, tmp_path: Path, images: Path) -> None:
    config = agent_config(tmp_path, broker, images / "classic")
    with StationDouble(broker) as station:
        station.publish(
            Kind.CONFIG, json.dumps({"v": 1, "version": 7, "jpeg_quality": 60}).encode(), retain=True
        )
        with running(config) as agent:
            assert wait_until(lambda: agent.keeper.version == 7, 5)
            assert agent.config.capture.jpeg_quality == 60


def test_a_failing_camera_is_logged_reported_and_retried(
    broker: Broker, tmp_path: Path, images: Path
) -> None:
    folder = tmp_path / "camera"
    folder.mkdir()
    config = agent_config(tmp_path, broker, folder, capture={"camera_retry_s": 0.2, "burst_size": 1})
    with StationDouble(broker) as station, running(config) as agent:
        agent.trigger("test")
        assert wait_until(lambda: agent.metrics.total("yaguar_agent_camera_errors") >= 1, 5)
        assert agent.send_heartbeat()
        assert wait_until(lambda: bool(station.heartbeats), 5)
        assert station.heartbeats[-1].camera_ok is False
        assert "no JPEG files" in (station.heartbeats[-1].camera_error or "")
        shutil.copy(images / "classic" / "horses.jpg", folder / "horses.jpg")  # the camera comes back
        assert wait_until(lambda: agent.runner.ok, 5)  # retried in the background, no trigger needed
        agent.trigger("test")
        assert wait_until(lambda: len(station.stored) == 1, 10)
        assert agent.send_heartbeat()
        assert wait_until(lambda: station.heartbeats[-1].camera_ok, 5)
        assert agent.healthy()


def test_the_watchdog_condition_sees_a_dead_or_silent_thread(
    broker: Broker, tmp_path: Path, images: Path
) -> None:
    config = agent_config(tmp_path, broker, images / "classic")
    with running(config) as agent:
        assert agent.healthy()
        time.sleep(0.6)
        assert not agent.healthy(max_silence_s=0.01)  # nothing loops that fast: taken for a hang
        agent.worker.stop()  # a worker thread that ended
        assert not agent.healthy()
