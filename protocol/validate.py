"""The validator both sides use: is this message acceptable under the contract?

``validate_frame`` is what the station runs on every frame before it stores anything; tests run it on
what really crossed the socket.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from paho.mqtt.properties import Properties
from pydantic import ValidationError

from . import topics
from .errors import ProtocolError
from .frame import from_properties
from .jpeg import JpegInfo, inspect_jpeg
from .limits import MAX_FRAME_BYTES, MAX_FRAME_PIXELS
from .messages import FrameMeta, Message, short_error

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class FrameLimits:
    max_payload_bytes: int = MAX_FRAME_BYTES
    max_pixels: int = MAX_FRAME_PIXELS
    max_clock_skew: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class ValidFrame:
    meta: FrameMeta
    jpeg: JpegInfo


def validate_frame(
    topic_name: str,
    payload: bytes | bytearray,  # paho's speed-up hands over the buffer it received into
    props: Properties | None,
    limits: FrameLimits = FrameLimits(),
    now: datetime | None = None,
) -> ValidFrame:
    """Return the frame's metadata and JPEG size, or raise ``ProtocolError`` saying what is wrong."""
    device_id = check_envelope(topic_name, payload, topics.Kind.FRAME, limits, "frame")
    meta = from_properties(props)
    check_body(device_id, payload, meta.device, meta.size, meta.sha256, "frame")
    now = now or datetime.now(UTC)
    if meta.captured_at - now > limits.max_clock_skew:
        raise ProtocolError(
            "clock_in_future",
            f"capture time {meta.captured_at.isoformat()} is ahead of the station clock by more than "
            f"{limits.max_clock_skew}; check the camera's clock",
        )
    info = inspect_jpeg(payload, max_pixels=limits.max_pixels)
    return ValidFrame(meta=meta, jpeg=info)


def check_envelope(
    topic_name: str, payload: bytes | bytearray, kind: topics.Kind, limits: FrameLimits, noun: str
) -> str:
    """The checks before the properties are read (topic, empty, too big); returns the topic's device."""
    device_id, found = topics.parse(topic_name)
    if found is not kind:
        raise ProtocolError("bad_topic", f"expected a {kind.value} topic, got {found.value}")
    if not payload:
        raise ProtocolError("empty_payload", f"the {noun} is empty (0 bytes)")
    if len(payload) > limits.max_payload_bytes:
        raise ProtocolError(
            "oversize_payload", f"{noun} is {len(payload)} bytes, over the {limits.max_payload_bytes} allowed"
        )
    return device_id


def check_body(
    device_id: str, payload: bytes | bytearray, device: str, size: int, sha256: str, noun: str
) -> None:
    """The payload is the claimed device's, of the claimed size and sha256."""
    if device != device_id:
        raise ProtocolError(
            "device_mismatch", f"{noun} says device {device!r} but was published on {device_id!r}'s topic"
        )
    if size != len(payload):
        raise ProtocolError("size_mismatch", f"{noun} says {size} bytes but carries {len(payload)}")
    if hashlib.sha256(payload).hexdigest() != sha256:
        raise ProtocolError("checksum_mismatch", f"{noun} bytes do not match their sha256")


def parse_json_message(
    model: type[M], topic_name: str, payload: bytes | bytearray, max_bytes: int = 64 * 1024
) -> M:
    """Validate a JSON message (heartbeat, status, ack, config, command) against its model."""
    if len(payload) > max_bytes:
        raise ProtocolError(
            "oversize_payload", f"message is {len(payload)} bytes, over the {max_bytes} allowed"
        )
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("bad_json", f"message is not JSON: {str(exc)[:80]}") from None
    try:
        message = model.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError("bad_message", f"{model.__name__}: {short_error(exc)}") from None
    device_id, _ = topics.parse(topic_name)
    claimed = getattr(message, "device", device_id)
    if claimed != device_id:
        raise ProtocolError(
            "device_mismatch", f"message says device {claimed!r} but came on {device_id!r}'s topic"
        )
    return message
