"""Which rules an event matches, and whether quiet hours hold a match back. Pure functions of the config
and the event's fields, so they are tested without a database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from .config import SEVERITY_RANK, AlertsConfig, Rule


@dataclass(frozen=True)
class EventFacts:
    """The fields of an event that rules look at (copied from ``Event`` so rules need no session)."""

    event_id: int
    device_id: str
    category: str
    species: str | None
    count: int
    confidence: float
    started_at: datetime
    utc_offset_min: int


def local_time(when: datetime, utc_offset_min: int) -> time:
    """Time of day at the camera: the UTC time plus the offset the camera reported."""
    return (when + timedelta(minutes=utc_offset_min)).time()


def species_matches(rule: Rule, species: str | None) -> bool:
    if not rule.species:
        return True
    if not species:
        return False
    name = species.strip().lower()
    for entry in rule.species:
        wanted = entry.strip().lower()
        # A genus alone ("Leopardus") matches each of its species ("Leopardus pardalis").
        if name == wanted or (" " not in wanted and name.split(" ", 1)[0] == wanted):
            return True
    return False


def rule_matches(config: AlertsConfig, rule: Rule, event: EventFacts) -> bool:
    if rule.categories and event.category not in rule.categories:
        return False
    if not species_matches(rule, event.species):
        return False
    if event.confidence < rule.min_confidence or event.count < rule.min_count:
        return False
    cameras = config.cameras_of(rule)
    if cameras and event.device_id not in cameras:
        return False
    if rule.active != "always":
        at_night = config.night.contains(local_time(event.started_at, event.utc_offset_min))
        if at_night != (rule.active == "night"):
            return False
    return True


def matching_rules(config: AlertsConfig, event: EventFacts) -> list[Rule]:
    return [rule for rule in config.rules if rule_matches(config, rule, event)]


def held_by_quiet_hours(config: AlertsConfig, severity: str, now: datetime, utc_offset_min: int) -> bool:
    """True when it is quiet hours where the camera is and the severity is below the override."""
    quiet = config.quiet_hours
    if quiet is None or SEVERITY_RANK[severity] >= SEVERITY_RANK[quiet.override_severity]:
        return False
    return quiet.contains(local_time(now, utc_offset_min))


def escalates(config: AlertsConfig, severity: str) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[config.escalation.min_severity]


_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base 32: no I, L, O, U to misread


def ack_code(alert_id: int) -> str:
    """A short code for the alert id with a check character, so a mistyped reply matches nothing."""
    digits = ""
    value = alert_id
    while True:
        value, rem = divmod(value, 32)
        digits = _ALPHABET[rem] + digits
        if value == 0:
            break
    check = _ALPHABET[(alert_id * 7 + 3) % 31]
    return digits.rjust(2, "0") + check


def parse_ack_code(code: str) -> int | None:
    """The alert id behind a code, or None when the code is malformed or its check fails."""
    code = code.strip().upper().replace("O", "0").replace("I", "1").replace("L", "1")
    if len(code) < 3 or any(ch not in _ALPHABET for ch in code):
        return None
    value = 0
    for ch in code[:-1]:
        value = value * 32 + _ALPHABET.index(ch)
    return value if ack_code(value) == code else None
