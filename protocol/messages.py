"""Message models of the wire contract (see ``SPEC.md``). JSON messages are validated with pydantic;
a frame's metadata travels as MQTT v5 user properties (see ``frame.py``).

Every model forbids unknown fields: a v1 receiver refuses what it does not understand, and a sender
that needs a new field bumps the contract's version.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .topics import DEVICE_ID_PATTERN

PROTOCOL_VERSION: Final = 1
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
MAX_SEQ = 2**63 - 1

DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN, description="device id, the MQTT user name")]
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
TriggerKind = Literal["pir", "timelapse", "command", "test"]


# A time with its UTC offset: AwareDatetime refuses naive times and keeps the sender's offset as sent
# (pydantic never converts it to UTC), which the contract needs: the capture's local time of day.
CaptureTime = AwareDatetime


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class FrameMeta(Message):
    """Metadata of one frame, carried in the frame message's user properties."""

    v: Literal[1] = PROTOCOL_VERSION
    device: DeviceId
    seq: int = Field(ge=0, le=MAX_SEQ, description="per-device sequence number; never reused")
    capture_id: Identifier = Field(description="unique id of this frame on the device")
    event_id: Identifier = Field(description="id of the trigger (burst) the frame belongs to")
    burst_index: int = Field(ge=-64, le=10_000, description="index in the burst; negative for pre-trigger")
    burst_size: int = Field(ge=1, le=10_000)
    captured_at: CaptureTime = Field(description="capture time with the device's UTC offset")
    trigger: TriggerKind
    sha256: str = Field(pattern=SHA256_PATTERN)
    size: int = Field(ge=1, description="payload size in bytes")
    width: int | None = Field(default=None, ge=1, le=65535)
    height: int | None = Field(default=None, ge=1, le=65535)


class Heartbeat(Message):
    """Periodic health report of an agent."""

    v: Literal[1] = PROTOCOL_VERSION
    device: DeviceId
    sent_at: CaptureTime
    uptime_s: float = Field(ge=0)
    agent_version: str = Field(max_length=32)
    config_version: int = Field(default=0, ge=0)
    cpu_temp_c: float | None = Field(default=None, ge=-60, le=150)
    load1: float | None = Field(default=None, ge=0)
    disk_free_bytes: int | None = Field(default=None, ge=0)
    spool_depth: int = Field(ge=0, description="frames waiting for the station's ack")
    spool_bytes: int = Field(ge=0)
    frames_captured: int = Field(ge=0)
    frames_sent: int = Field(ge=0)
    frames_evicted: int = Field(ge=0)
    wifi_dbm: float | None = Field(default=None, ge=-150, le=0)
    clock_synced: bool | None = None
    battery_v: float | None = Field(default=None, ge=0, le=100)
    camera_ok: bool = True
    camera_error: str | None = Field(default=None, max_length=200)


class Status(Message):
    """Retained presence of an agent; the agent's Last Will is the same message with ``offline``."""

    v: Literal[1] = PROTOCOL_VERSION
    device: DeviceId
    state: Literal["online", "offline"]
    at: CaptureTime | None = None
    agent_version: str | None = Field(default=None, max_length=32)
    config_version: int | None = Field(default=None, ge=0)
    config_error: str | None = Field(
        default=None, max_length=500, description="why a pushed config was refused"
    )


class Ack(Message):
    """Application-level acknowledgement of one frame: sent only after the station committed it."""

    v: Literal[1] = PROTOCOL_VERSION
    seq: int = Field(ge=0, le=MAX_SEQ)
    status: Literal["stored", "duplicate", "rejected"]
    reason: str | None = Field(default=None, max_length=64, description="rejection code, when rejected")


class RemoteConfig(Message):
    """Settings the station pushes to an agent (retained), applied without a restart."""

    v: Literal[1] = PROTOCOL_VERSION
    version: int = Field(ge=1, description="increases with every change; the agent reports what it applied")
    burst_size: int | None = Field(default=None, ge=1, le=30)
    burst_interval_s: float | None = Field(default=None, ge=0.05, le=60)
    pir_holdoff_s: float | None = Field(default=None, ge=0, le=3600)
    timelapse_interval_s: float | None = Field(default=None, ge=10, le=86400)
    heartbeat_interval_s: float | None = Field(default=None, ge=5, le=3600)
    jpeg_quality: int | None = Field(default=None, ge=30, le=100)
    max_send_px: int | None = Field(default=None, ge=320, le=10000, description="longest side sent")
    night_start: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    night_end: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class Command(Message):
    """A request from the station, e.g. take a burst now."""

    v: Literal[1] = PROTOCOL_VERSION
    id: Identifier
    command: Literal["capture", "heartbeat"]
    burst_size: int | None = Field(default=None, ge=1, le=30)


def short_error(exc: Exception, limit: int = 200) -> str:
    """One line out of a pydantic error, for logs and dead letters."""
    text = re.sub(r"\s+", " ", str(exc)).strip()
    text = re.sub(r" For further information visit \S+", "", text)
    return text[:limit]
