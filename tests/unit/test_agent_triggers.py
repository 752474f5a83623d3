"""Triggers on gpiozero's MockFactory: the PIR hold-off, the timelapse, and the IR illuminator."""

from __future__ import annotations

import time
from datetime import datetime
from datetime import time as clock_time

import pytest
from gpiozero.pins.mock import MockFactory

from tests.integration.agent_support import wait_until
from yaguar.agent.capture import Trigger
from yaguar.agent.config import IlluminatorConfig, PirConfig
from yaguar.agent.metrics import AgentMetrics
from yaguar.agent.triggers import Illuminator, PirTrigger, Timelapse, is_night


@pytest.fixture
def factory() -> MockFactory:
    return MockFactory()


def test_one_animal_one_burst_then_the_next_after_the_holdoff(factory: MockFactory) -> None:
    fired: list[Trigger] = []
    metrics = AgentMetrics()
    pir = PirTrigger(PirConfig(pin=17, holdoff_s=0.6, sample_rate=100), fired.append, metrics, factory)
    pin = factory.pin(17)
    time.sleep(0.1)  # the sensor sees the idle (low) line first, as after boot
    try:
        for _ in range(3):  # an animal wandering in front of the sensor: three edges inside the hold-off
            pin.drive_high()
            time.sleep(0.05)
            pin.drive_low()
            time.sleep(0.05)
        assert wait_until(lambda: len(fired) == 1, 2)
        assert metrics.total("yaguar_agent_triggers_suppressed") >= 1
        time.sleep(0.7)
        pin.drive_high()
        assert wait_until(lambda: len(fired) == 2, 2)
        assert [t.kind for t in fired] == ["pir", "pir"]
    finally:
        pir.close()


def test_timelapse_fires_on_its_interval_and_can_be_changed() -> None:
    fired: list[Trigger] = []
    interval: list[float | None] = [None]
    timelapse = Timelapse(lambda: interval[0], fired.append)
    timelapse.start()
    try:
        time.sleep(0.3)
        assert fired == []  # off
        interval[0] = 0.1
        timelapse.reschedule()
        assert wait_until(lambda: len(fired) >= 3, 3)
        assert all(t.kind == "timelapse" for t in fired)
    finally:
        timelapse.stop()
    assert not timelapse.is_alive()


@pytest.mark.parametrize(
    ("now", "start", "end", "night"),
    [
        ((23, 0), "18:30", "06:00", True),
        ((3, 0), "18:30", "06:00", True),
        ((12, 0), "18:30", "06:00", False),
        ((6, 0), "18:30", "06:00", False),
        ((1, 0), "00:30", "05:00", True),
        ((5, 30), "00:30", "05:00", False),
    ],
)
def test_night_window_wraps_past_midnight(now: tuple[int, int], start: str, end: str, night: bool) -> None:
    assert is_night(clock_time(*now), start, end) is night


def test_illuminator_is_lit_only_during_a_burst_at_night(factory: MockFactory) -> None:
    cfg = IlluminatorConfig(pin=27, light_sensor_pin=22, dark_when_active=True)
    light = Illuminator(lambda: cfg, factory)
    led, sensor = factory.pin(27), factory.pin(22)
    try:
        sensor.drive_low()  # daylight
        with light:
            assert led.state == 0
        sensor.drive_high()  # dark
        with light:
            assert led.state == 1
        assert led.state == 0  # off again after the burst
    finally:
        light.close()


def test_illuminator_follows_the_schedule_without_a_sensor(factory: MockFactory) -> None:
    cfg = IlluminatorConfig(pin=27, night_start="18:30", night_end="06:00")
    light = Illuminator(lambda: cfg, factory)
    led = factory.pin(27)
    try:
        assert light.night(datetime(2026, 11, 26, 23, 0).astimezone())
        assert not light.night(datetime(2026, 11, 26, 12, 0).astimezone())
        with light:
            assert led.state == int(light.night())
        assert led.state == 0
    finally:
        light.close()
