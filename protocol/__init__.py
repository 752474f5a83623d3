"""The wire contract shared by agent and station: topics, message models and the validator.

The contract itself is written down in ``SPEC.md`` beside this file.
"""

from .errors import ProtocolError
from .frame import CONTENT_TYPE, build_meta, from_properties, to_properties
from .jpeg import JpegInfo, inspect_jpeg
from .messages import (
    PROTOCOL_VERSION,
    Ack,
    Command,
    FrameMeta,
    Heartbeat,
    RemoteConfig,
    Status,
)
from .topics import Kind, check_device_id, is_valid_device_id, topic
from .validate import FrameLimits, ValidFrame, parse_json_message, validate_frame

__all__ = [
    "CONTENT_TYPE",
    "PROTOCOL_VERSION",
    "Ack",
    "Command",
    "FrameLimits",
    "FrameMeta",
    "Heartbeat",
    "JpegInfo",
    "Kind",
    "ProtocolError",
    "RemoteConfig",
    "Status",
    "ValidFrame",
    "build_meta",
    "check_device_id",
    "from_properties",
    "inspect_jpeg",
    "is_valid_device_id",
    "parse_json_message",
    "to_properties",
    "topic",
    "validate_frame",
]
