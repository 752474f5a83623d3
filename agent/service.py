"""The agent wired together: triggers -> bursts -> spool -> publisher, heartbeats, pushed config, and
systemd's READY/WATCHDOG notifications.

The watchdog is fed only while every worker thread is alive, so a hung or dead thread gets the service
restarted by systemd (Restart=always) instead of a camera that silently stopped working.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from prometheus_client import CollectorRegistry

from yaguar.notify import Notifier
from yaguar.protocol.messages import Command
from yaguar.protocol.topics import Kind

from .cameras import Camera, CameraError, make_camera
from .capture import BurstWorker, CameraRunner, PretriggerBuffer, Trigger
from .clip_recorders import make_recorder
from .config import AgentConfig
from .health import ConfigKeeper, HealthReporter
from .metrics import AgentMetrics
from .publisher import AGENT_VERSION, Publisher
from .spool import Spool
from .triggers import Illuminator, PirTrigger, Timelapse, make_pin_factory

log = logging.getLogger(__name__)


class Agent:
    """One field agent. ``start``/``stop`` for tests and the simulator; ``run`` for the service."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        registry: CollectorRegistry | None = None,
        pin_factory: Any = None,
        camera: Camera | None = None,
    ) -> None:
        self.metrics = AgentMetrics(registry)
        self.keeper = ConfigKeeper(config, self.metrics, on_change=self._config_changed)
        self.spool = Spool(
            config.spool.dir,
            max_bytes=config.spool.max_bytes,
            policy=config.spool.policy,
            fsync=config.spool.fsync,
            seq_block=config.spool.seq_block,
            metrics=self.metrics,
        )
        self.runner = CameraRunner(
            camera or make_camera(config.camera, config.capture.jpeg_quality),
            self.metrics,
            config.capture.camera_retry_s,
        )
        self.pin_factory = pin_factory if pin_factory is not None else make_pin_factory(config.pin_factory)
        ir = config.illuminator
        self.illuminator = (
            Illuminator(lambda: self.config.illuminator, self.pin_factory)
            if ir.pin is not None or ir.light_sensor_pin is not None
            else None
        )
        self.pretrigger = (
            PretriggerBuffer(self.runner, config.capture.pretrigger_frames, config.capture.pretrigger_fps)
            if config.capture.pretrigger_frames
            else None
        )
        self.worker = BurstWorker(
            config.device_id,
            self.runner,
            self.spool,
            settings=lambda: self.config.capture,
            metrics=self.metrics,
            pretrigger=self.pretrigger,
            illuminator=self.illuminator,
        )
        self.publisher = Publisher(
            self.spool,
            config.mqtt,
            config.device_id,
            metrics=self.metrics,
            on_config=self._on_config,
            on_command=self._on_command,
        )
        self.health = HealthReporter(
            config.device_id,
            lambda: self.config,
            self.metrics,
            lambda: (self.spool.depth, self.spool.bytes),
            lambda: self.runner.error,
            AGENT_VERSION,
            lambda: self.keeper.version,
        )
        self.clips = make_recorder(
            config, self.runner.camera, self.spool, self.metrics
        )  # None: bursts, not clips
        self.pir: PirTrigger | None = None
        if config.pir.enabled:
            try:
                self.pir = PirTrigger(config.pir, self._submit, self.metrics, self.pin_factory)
            except Exception as exc:  # gpiozero raises many types for "no GPIO here"
                # Timelapse and station commands still work; the log says why motion does not.
                log.error("PIR on pin %s unavailable, running without it: %s", config.pir.pin, exc)
        self.timelapse = Timelapse(lambda: self.config.timelapse.interval_s, self._submit)
        self._heartbeat_now = threading.Event()
        self._started = False

    @property
    def config(self) -> AgentConfig:
        return self.keeper.config

    def trigger(self, kind: str = "test", burst_size: int | None = None) -> bool:
        """Start a burst (or a clip) now (what the PIR, the timelapse and the station's command do)."""
        return self._submit(Trigger(kind, burst_size=burst_size))

    def _submit(self, trigger: Trigger) -> bool:
        if self.clips is not None:
            self.clips.trigger(trigger.kind)
            return True
        return self.worker.submit(trigger)

    # -- life cycle ----------------------------------------------------------------------------------

    def start(self) -> Agent:
        if self.clips is not None:
            try:
                self.clips.start()  # the camera feeds the clip ring; no burst worker competes for it
            except CameraError as exc:  # the heartbeat reports it; the rest of the agent still runs
                log.error("clips: %s", exc)
                self.runner.error = str(exc)
        else:
            self.worker.start()
        if self.pretrigger is not None:
            self.pretrigger.start()
        self.timelapse.start()
        self.publisher.start()
        self._started = True
        log.info(
            "agent %s started: camera %s, spool %s (%d frames waiting), broker %s:%d",
            self.config.device_id,
            self.runner.camera.describe(),
            self.spool.directory,
            self.spool.depth,
            self.config.mqtt.host,
            self.config.mqtt.port,
        )
        return self

    def stop(self) -> None:
        if self.pir is not None:
            self.pir.close()
        self.timelapse.stop()
        if self.pretrigger is not None:
            self.pretrigger.stop()
        if self.clips is not None:
            self.clips.stop()
        self.worker.stop()
        self.publisher.stop()
        self.runner.close()
        if self.illuminator is not None:
            self.illuminator.close()
        self._started = False

    def healthy(self, max_silence_s: float = 300.0) -> bool:
        """Every worker thread alive and not stuck (what the systemd watchdog is fed on)."""
        capture_alive = (
            self.clips.is_alive() if self.clips is not None else self.worker.is_alive(max_silence_s)
        )
        return capture_alive and self.publisher.is_alive(max_silence_s) and self.timelapse.is_alive()

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set: heartbeats on schedule, the watchdog fed while healthy."""
        notifier = Notifier()
        self.start()
        notifier.notify("READY=1")
        watchdog_every = notifier.watchdog_s / 3 if notifier.watchdog_s else None
        next_heartbeat = time.monotonic()
        next_watchdog = time.monotonic()
        try:
            while not stop.wait(0.5 if watchdog_every is None else min(0.5, watchdog_every)):
                now = time.monotonic()
                if watchdog_every is not None and now >= next_watchdog:
                    if self.healthy():
                        notifier.notify("WATCHDOG=1")
                    else:
                        log.error(
                            "agent: a worker thread died or hangs; withholding the watchdog so systemd restarts us"
                        )
                    next_watchdog = now + watchdog_every
                due = now >= next_heartbeat or self._heartbeat_now.is_set()
                if due and self.publisher.connected.is_set() and self.send_heartbeat():
                    self._heartbeat_now.clear()
                    next_heartbeat = now + self.config.health.heartbeat_interval_s
        finally:
            notifier.notify("STOPPING=1")
            self.stop()

    def send_heartbeat(self) -> bool:
        return self.publisher.publish(Kind.HEARTBEAT, self.health.heartbeat())

    # -- from the station ----------------------------------------------------------------------------

    def _on_config(self, payload: bytes) -> None:
        before = (self.keeper.version, self.keeper.error)
        self.keeper.handle(payload)
        if (self.keeper.version, self.keeper.error) != before:
            self.publisher.config_version = self.keeper.version
            self.publisher.config_error = self.keeper.error
            self.publisher.publish_status()

    def _config_changed(self, config: AgentConfig) -> None:
        if self.pir is not None:
            self.pir.holdoff_s = config.pir.holdoff_s
        self.timelapse.reschedule()
        self._heartbeat_now.set()

    def _on_command(self, command: Command) -> None:
        log.info("command %s from the station: %s", command.id, command.command)
        if command.command == "capture":
            self._submit(Trigger("command", burst_size=command.burst_size))
        elif command.command == "heartbeat":
            self._heartbeat_now.set()
