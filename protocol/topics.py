"""MQTT topics of the wire contract: ``yaguar/v1/{device_id}/{kind}``.

The device id is part of every topic so that the broker's ACL can pin a device to its own subtree,
and the station can check it against the id inside the message.
"""

from __future__ import annotations

import re
from enum import StrEnum

from .errors import ProtocolError

PREFIX = "yaguar/v1"
DEVICE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)

# Station workers share the frame and heartbeat streams; the broker gives each message to one of them.
SHARED_GROUP = "yaguar"


class Kind(StrEnum):
    FRAME = "frame"  # agent -> station: JPEG bytes, metadata in MQTT v5 user properties
    HEARTBEAT = "heartbeat"  # agent -> station: JSON health
    STATUS = "status"  # agent -> station: JSON, retained; also the agent's Last Will ("offline")
    ACK = "ack"  # station -> agent: JSON, sent only after the frame is committed
    CONFIG = "config"  # station -> agent: JSON, retained
    COMMAND = "command"  # station -> agent: JSON, e.g. capture now
    CLIP = "clip"  # agent -> station: one chunk of an MP4 clip, metadata in user properties (clip.py)


AGENT_PUBLISHES = (Kind.FRAME, Kind.HEARTBEAT, Kind.STATUS, Kind.CLIP)
STATION_PUBLISHES = (Kind.ACK, Kind.CONFIG, Kind.COMMAND)


class TopicError(ProtocolError):
    """A topic that is not part of the contract; ``reason`` is a short machine-readable code."""


def is_valid_device_id(device_id: str) -> bool:
    return bool(_DEVICE_ID_RE.fullmatch(device_id))


def check_device_id(device_id: str) -> str:
    """Return the id unchanged, or raise ``TopicError`` saying why it is not a valid device id."""
    if not is_valid_device_id(device_id):
        raise TopicError(
            "bad_device_id",
            f"device id {device_id[:80]!r} must be 1-63 characters of a-z, 0-9 and '-', "
            "not starting with '-'",
        )
    return device_id


def topic(device_id: str, kind: Kind | str) -> str:
    """The topic for one device and message kind; refuses device ids outside the rule."""
    return f"{PREFIX}/{check_device_id(device_id)}/{Kind(kind).value}"


def wildcard(kind: Kind | str) -> str:
    """Subscription filter for one kind of message from every device."""
    return f"{PREFIX}/+/{Kind(kind).value}"


def shared(kind: Kind | str, group: str = SHARED_GROUP) -> str:
    """MQTT v5 shared subscription, so several station workers split the stream."""
    return f"$share/{group}/{wildcard(kind)}"


def parse(topic_name: str) -> tuple[str, Kind]:
    """Split a received topic into (device_id, kind), or raise ``TopicError``."""
    parts = topic_name.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != PREFIX:
        raise TopicError("bad_topic", f"topic {topic_name[:120]!r} is not yaguar/v1/<device>/<kind>")
    device_id, kind = parts[2], parts[3]
    check_device_id(device_id)
    try:
        return device_id, Kind(kind)
    except ValueError:
        raise TopicError("bad_topic", f"unknown message kind {kind[:40]!r} in topic") from None
