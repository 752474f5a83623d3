"""Which troubles a camera has, from what the station knows of it: when it was last heard from, its
presence (the retained status, whose Last Will says ``offline``), and its latest heartbeat. Pure
functions of the config and these facts, so they are tested without a database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .device_config import DeviceRules

CONDITIONS = ("offline", "battery", "spool", "disk", "clock")


@dataclass(frozen=True)
class DeviceFacts:
    device_id: str
    name: str
    last_seen: datetime | None
    status: str | None
    status_at: datetime | None
    heartbeat: dict[str, Any]
    clock_drift_s: float | None  # the newest heartbeat's sent_at minus its received_at
    utc_offset_min: int


def troubles(rules: DeviceRules, facts: DeviceFacts, now: datetime) -> dict[str, float | None]:
    """The troubles the camera has now, each with the value that shows it (None when there is none)."""
    found: dict[str, float | None] = {}
    silent_for = offline_for(rules, facts, now)
    if silent_for is not None:
        found["offline"] = silent_for
        return found  # a silent camera's heartbeat is old news: only its silence counts
    beat = facts.heartbeat
    battery = beat.get("battery_v")
    if rules.battery_min_v is not None and isinstance(battery, int | float) and battery < rules.battery_min_v:
        found["battery"] = float(battery)
    depth = beat.get("spool_depth")
    if rules.spool_max_frames is not None and isinstance(depth, int) and depth > rules.spool_max_frames:
        found["spool"] = float(depth)
    disk = beat.get("disk_free_bytes")
    if rules.disk_min_bytes is not None and isinstance(disk, int) and disk < rules.disk_min_bytes:
        found["disk"] = float(disk)
    if rules.clock_max_drift_s is not None:
        drift = facts.clock_drift_s
        if (drift is not None and abs(drift) > rules.clock_max_drift_s) or beat.get("clock_synced") is False:
            found["clock"] = drift
    return found


def offline_for(rules: DeviceRules, facts: DeviceFacts, now: datetime) -> float | None:
    """Seconds the camera has been silent when that is at least ``offline_after_s``, else None. Silent:
    nothing heard (heartbeat, frame, status) since, or its Last Will said offline that long ago."""
    limit = timedelta(seconds=rules.offline_after_s)
    if facts.last_seen is None:
        return None  # never heard from: not deployed yet, not missing
    if now - facts.last_seen >= limit:
        return (now - facts.last_seen).total_seconds()
    if facts.status == "offline" and facts.status_at is not None and now - facts.status_at >= limit:
        return (now - facts.status_at).total_seconds()
    return None
