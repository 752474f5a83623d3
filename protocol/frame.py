"""A frame on the wire: the JPEG bytes as the MQTT payload, its ``FrameMeta`` as v5 user properties."""

from __future__ import annotations

import hashlib

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from .errors import ProtocolError
from .messages import FrameMeta, short_error

CONTENT_TYPE = "image/jpeg"
_INT_FIELDS = ("v", "seq", "burst_index", "burst_size", "size", "width", "height")


def build_meta(payload: bytes, **fields: object) -> FrameMeta:
    """FrameMeta for a payload, with its size and sha256 filled in."""
    return FrameMeta.model_validate(
        {"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload), **fields}
    )


def to_properties(meta: FrameMeta, message_expiry_s: int | None = None) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = CONTENT_TYPE
    props.UserProperty = [
        (key, value.isoformat() if key == "captured_at" else str(value))
        for key, value in meta.model_dump(exclude_none=True).items()
    ]
    if message_expiry_s:
        props.MessageExpiryInterval = message_expiry_s
    return props


def user_properties(props: Properties | None) -> dict[str, str]:
    """User properties as a dict; a repeated key is refused (it would be ambiguous)."""
    pairs = getattr(props, "UserProperty", None) or []
    result: dict[str, str] = {}
    for key, value in pairs:
        if key in result:
            raise ProtocolError("bad_properties", f"user property {key[:40]!r} is repeated")
        result[key] = value
    return result


def from_properties(props: Properties | None) -> FrameMeta:
    """Parse a frame's metadata from its properties, or raise ``ProtocolError``."""
    content_type = getattr(props, "ContentType", None)
    if content_type != CONTENT_TYPE:
        raise ProtocolError("bad_properties", f"content type must be {CONTENT_TYPE}, got {content_type!r}")
    raw: dict[str, object] = dict(user_properties(props))
    for key in _INT_FIELDS:
        value = raw.get(key)
        if isinstance(value, str):
            try:
                raw[key] = int(value)
            except ValueError:
                raise ProtocolError("bad_properties", f"property {key} must be an integer") from None
    try:
        return FrameMeta.model_validate(raw)
    except ValidationError as exc:
        raise ProtocolError("bad_properties", f"frame properties: {short_error(exc)}") from None
