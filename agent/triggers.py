"""What starts a burst: the PIR sensor (with a hold-off), a timelapse schedule, and the IR illuminator
that lights the scene at night. The station's ``capture`` command arrives through the publisher.

GPIO goes through gpiozero, so tests and demos drive the same code with its ``MockFactory``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from datetime import time as clock_time
from typing import Any

from .capture import Trigger
from .config import IlluminatorConfig, PirConfig
from .metrics import AgentMetrics

log = logging.getLogger(__name__)


def make_pin_factory(kind: str) -> Any:
    """gpiozero pin factory: None (gpiozero's default, the real pins) or a MockFactory."""
    if kind == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    return None


class PirTrigger:
    """A PIR sensor on a GPIO pin. One animal walking past keeps the output high, or toggles it, for
    seconds; the hold-off turns that into one burst."""

    def __init__(
        self,
        config: PirConfig,
        on_trigger: Callable[[Trigger], object],
        metrics: AgentMetrics,
        pin_factory: Any = None,
    ) -> None:
        from gpiozero import MotionSensor

        self.on_trigger = on_trigger
        self.metrics = metrics
        self.holdoff_s = config.holdoff_s
        self._last: float | None = None
        self._lock = threading.Lock()
        self.sensor = MotionSensor(
            config.pin,
            queue_len=config.queue_len,
            threshold=config.threshold,
            sample_rate=config.sample_rate,
            pin_factory=pin_factory,
        )
        self.sensor.when_motion = self._motion

    def _motion(self) -> None:
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self.holdoff_s:
                self.metrics.triggers_suppressed.inc()
                log.debug("pir: motion inside the %.1f s hold-off, ignored", self.holdoff_s)
                return
            self._last = now
        self.on_trigger(Trigger("pir", at=now))

    def close(self) -> None:
        self.sensor.close()


class Timelapse:
    """A burst every ``interval_s`` (None: off); the interval can change while it runs."""

    def __init__(
        self, interval_s: Callable[[], float | None], on_trigger: Callable[[Trigger], object]
    ) -> None:
        self.interval_s = interval_s
        self.on_trigger = on_trigger
        self._stop = threading.Event()
        self._poke = threading.Event()
        self._thread = threading.Thread(target=self._run, name="timelapse", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def reschedule(self) -> None:
        """The interval changed: start counting it again now."""
        self._poke.set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            interval = self.interval_s()
            self._poke.clear()
            if self._poke.wait(interval if interval is not None else 3600):
                continue  # poked: reread the interval
            if interval is not None and not self._stop.is_set():
                self.on_trigger(Trigger("timelapse"))


def _hhmm(text: str) -> clock_time:
    hours, minutes = text.split(":")
    return clock_time(int(hours), int(minutes))


def is_night(now_local: datetime | clock_time, night_start: str, night_end: str) -> bool:
    """Whether a local time is in the night window; the window may wrap past midnight."""
    now = now_local.time() if isinstance(now_local, datetime) else now_local
    start, end = _hhmm(night_start), _hhmm(night_end)
    if start <= end:
        return start <= now < end
    return now >= start or now < end


class Illuminator:
    """An IR illuminator on a GPIO pin, lit only during a burst at night (it draws more than the Pi).

    Night comes from a digital light sensor when one is configured, else from the schedule.
    """

    def __init__(self, config: Callable[[], IlluminatorConfig], pin_factory: Any = None) -> None:
        from gpiozero import DigitalInputDevice, DigitalOutputDevice

        self.config = config
        cfg = config()
        self.led = DigitalOutputDevice(cfg.pin, pin_factory=pin_factory) if cfg.pin is not None else None
        self.sensor = (
            DigitalInputDevice(cfg.light_sensor_pin, pin_factory=pin_factory)
            if cfg.light_sensor_pin is not None
            else None
        )

    def night(self, now_local: datetime | None = None) -> bool:
        cfg = self.config()
        if self.sensor is not None:
            return bool(self.sensor.is_active) == cfg.dark_when_active
        return is_night(now_local or datetime.now().astimezone(), cfg.night_start, cfg.night_end)

    def __enter__(self) -> Illuminator:
        if self.led is not None and self.night():
            self.led.on()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.led is not None:
            self.led.off()

    def close(self) -> None:
        for device in (self.led, self.sensor):
            if device is not None:
                device.close()
