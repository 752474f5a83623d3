"""Rule matching, night windows, quiet hours and acknowledgement codes, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yaguar.alerts.config import AlertsConfig, DailyWindow
from yaguar.alerts.rules import EventFacts, ack_code, held_by_quiet_hours, matching_rules, parse_ack_code

CONFIG = AlertsConfig.model_validate(
    {
        "camera_groups": {"village": ["cam-01"]},
        "night": {"start": "18:30", "end": "05:30"},
        "quiet_hours": {"start": "22:00", "end": "06:00", "override_severity": "high"},
        "rules": [
            {
                "name": "cats",
                "species": ["Panthera onca", "Leopardus"],
                "min_confidence": 0.6,
                "severity": "high",
            },
            {
                "name": "night-people",
                "categories": ["person"],
                "active": "night",
                "camera_groups": ["village"],
            },
            {"name": "herds", "species": ["Tayassu pecari"], "min_count": 5, "severity": "low"},
        ],
    }
)


def facts(**over: Any) -> EventFacts:
    base: dict[str, Any] = {
        "event_id": 1, "device_id": "cam-01", "category": "animal", "species": "Panthera onca", "count": 1,
        "confidence": 0.9, "started_at": datetime(2026, 11, 26, 7, 0, tzinfo=UTC), "utc_offset_min": -300,
    }  # fmt: skip
    return EventFacts(**{**base, **over})


@pytest.mark.parametrize(
    ("over", "rules"),
    [
        ({}, ["cats"]),
        ({"species": "panthera ONCA"}, ["cats"]),
        ({"species": "Leopardus pardalis"}, ["cats"]),  # genus entry
        ({"species": "Leopardusx pardalis"}, []),
        ({"confidence": 0.59}, []),
        ({"species": None, "category": "person"}, ["night-people"]),  # 02:00 local
        ({"species": None, "category": "person", "device_id": "cam-02"}, []),  # not in the group
        (
            {"species": None, "category": "person", "started_at": datetime(2026, 11, 26, 17, 0, tzinfo=UTC)},
            [],
        ),
        ({"species": "Tayassu pecari", "count": 4}, []),
        ({"species": "Tayassu pecari", "count": 5}, ["herds"]),
        ({"species": None, "category": "vehicle"}, []),
    ],
)
def test_matching(over: dict[str, Any], rules: list[str]) -> None:
    assert [r.name for r in matching_rules(CONFIG, facts(**over))] == rules


def test_windows_wrap_midnight() -> None:
    night = DailyWindow(start="18:30", end="05:30")
    assert night.contains(time(23, 59)) and night.contains(time(0, 0)) and night.contains(time(18, 30))
    assert not night.contains(time(5, 30)) and not night.contains(time(12, 0))
    day = DailyWindow(start="08:00", end="17:00")
    assert day.contains(time(8, 0)) and not day.contains(time(17, 0)) and not day.contains(time(3, 0))


def test_quiet_hours_hold_low_but_not_high() -> None:
    at_2am_local = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    at_noon_local = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)
    assert held_by_quiet_hours(CONFIG, "low", at_2am_local, -300)
    assert held_by_quiet_hours(CONFIG, "medium", at_2am_local, -300)
    assert not held_by_quiet_hours(CONFIG, "high", at_2am_local, -300)
    assert not held_by_quiet_hours(CONFIG, "low", at_noon_local, -300)
    assert not held_by_quiet_hours(CONFIG, "low", at_2am_local, +300)  # 12:00 at a camera on UTC+5


@given(st.integers(min_value=1, max_value=10**9))
def test_ack_codes_round_trip(alert_id: int) -> None:
    code = ack_code(alert_id)
    assert parse_ack_code(code) == alert_id
    assert parse_ack_code(code.lower()) == alert_id


def test_mistyped_codes_match_nothing() -> None:
    code = ack_code(1234)
    wrong = [code[:-1] + c for c in "0123456789ABCDEFGHJKMNPQRSTVWXYZ" if c != code[-1]]
    assert all(parse_ack_code(w) != 1234 for w in wrong)
    assert parse_ack_code("") is None and parse_ack_code("!!!") is None and parse_ack_code("7") is None
    assert ack_code(1) == "01" + ack_code(1)[-1]  # short codes are padded to three characters
