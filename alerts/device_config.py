"""Configuration of device alerts (``[alerts.devices]``): when a camera is in trouble.

Example::

    [alerts.devices]
    offline_after_s = 1800      # silent (Last Will, or no heartbeat nor frame) this long
    battery_min_v = 11.6
    spool_max_frames = 300
    disk_min_bytes = 500_000_000
    clock_max_drift_s = 120
    cooldown_s = 21600          # the same trouble on the same camera alerts again after this long
    storm_min_cameras = 5       # this many cameras going silent at once: one grouped message
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from yaguar.config import Section

DeviceChannel = Literal["sms", "log"]


class DeviceRules(Section):
    enabled: bool = Field(default=True, description="alert on cameras in trouble (with [alerts] enabled)")
    check_interval_s: float = Field(
        default=30.0, ge=0.05, le=3600, description="look at the cameras this often"
    )
    offline_after_s: float = Field(
        default=1800.0, ge=1, le=7 * 86_400, description="a camera silent this long is offline"
    )
    battery_min_v: float | None = Field(
        default=11.6, ge=0, le=100, description="below: battery low; none: off"
    )
    spool_max_frames: int | None = Field(
        default=300, ge=1, description="frames waiting on the camera above this: the spool is filling"
    )
    disk_min_bytes: int | None = Field(
        default=500_000_000, ge=0, description="free disk on the camera below this"
    )
    clock_max_drift_s: float | None = Field(
        default=120.0, gt=0, le=86_400, description="camera clock off by more than this (or not synced)"
    )
    cooldown_s: float = Field(
        default=21_600.0,
        ge=0,
        le=7 * 86_400,
        description="the same trouble on one camera alerts again only after",
    )
    storm_min_cameras: int = Field(
        default=5,
        ge=2,
        le=10_000,
        description="so many cameras going offline in one look: one grouped message",
    )
    back_online: bool = Field(default=True, description="tell when an offline camera reports again")
    severity: Literal["low", "medium", "high"] = Field(default="medium")
    channels: list[DeviceChannel] = Field(
        default_factory=lambda: list[DeviceChannel](["sms", "log"]),
        description="sms goes to the log without Twilio",
    )
    recipients: list[str] = Field(default_factory=list, description="recipient names; empty: all of them")
