"""Video clips on the wire (SPEC.md, "Clip chunks"): an MP4 sent as chunks on ``yaguar/v1/{device}/clip``.

A clip is usually larger than a frame message may be, so the agent cuts it into chunks. Each chunk is
one spool item with its own ``seq`` from the device's counter, its own sha256, and the clip's identity
and checksum, so the station acknowledges chunks exactly as it acknowledges frames and puts the clip
together, exactly once, when it holds every chunk. The station relies on no order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import Field, ValidationError

from . import topics
from .errors import ProtocolError
from .frame import user_properties
from .messages import (
    MAX_SEQ,
    SHA256_PATTERN,
    CaptureTime,
    DeviceId,
    Identifier,
    Message,
    TriggerKind,
    short_error,
)
from .validate import FrameLimits, check_body, check_envelope

CLIP_CONTENT_TYPE = "video/mp4"
DEFAULT_CHUNK_BYTES = 256 * 1024
MAX_CHUNKS = 4096


class ClipChunkMeta(Message):
    """Metadata of one chunk of a clip, carried in the clip message's user properties."""

    v: Literal[1] = 1  # the contract's version
    device: DeviceId
    seq: int = Field(ge=0, le=MAX_SEQ, description="the chunk's own per-device sequence number")
    clip_id: Identifier = Field(description="unique id of the clip on the device")
    event_id: Identifier = Field(description="the trigger the clip belongs to")
    chunk_index: int = Field(ge=0, lt=MAX_CHUNKS)
    chunk_count: int = Field(ge=1, le=MAX_CHUNKS)
    clip_size: int = Field(ge=1, description="bytes of the whole MP4")
    clip_sha256: str = Field(pattern=SHA256_PATTERN, description="sha256 of the whole MP4")
    started_at: CaptureTime = Field(description="capture time of the clip's first frame (pre-roll included)")
    trigger_at: CaptureTime = Field(description="when the trigger fired")
    trigger: TriggerKind
    fps: float = Field(gt=0, le=240)
    truncated: bool = Field(default=False, description="the agent stopped before the post-roll ended")
    sha256: str = Field(pattern=SHA256_PATTERN, description="sha256 of this chunk")
    size: int = Field(ge=1, description="bytes of this chunk")

    @property
    def captured_at(self) -> datetime:
        """As a frame's: when the clip's first frame was taken (the spool orders and reports by it)."""
        return self.started_at

    @property
    def burst_index(self) -> int | None:
        """A chunk is no burst frame: it never jumps the spool's queue as an event's trigger frame."""
        return None

    def clip_fields(self) -> tuple[Any, ...]:
        """What every chunk of one clip must agree on."""
        return (
            self.event_id,
            self.chunk_count,
            self.clip_size,
            self.clip_sha256,
            self.started_at,
            self.trigger_at,
            self.trigger,
            self.fps,
            self.truncated,
        )


def split_clip(data: bytes, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> list[tuple[dict[str, Any], bytes]]:
    """The chunks of an MP4, each with its index, count, size and sha256 (and the clip's)."""
    if not data:
        raise ValueError("an empty clip has no chunks")
    pieces = [data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes)]
    if len(pieces) > MAX_CHUNKS:
        raise ValueError(f"a clip of {len(data)} bytes needs more than {MAX_CHUNKS} chunks")
    clip_sha = hashlib.sha256(data).hexdigest()
    return [
        (
            {
                "chunk_index": index,
                "chunk_count": len(pieces),
                "clip_size": len(data),
                "clip_sha256": clip_sha,
                "sha256": hashlib.sha256(piece).hexdigest(),
                "size": len(piece),
            },
            piece,
        )
        for index, piece in enumerate(pieces)
    ]


def to_properties(meta: ClipChunkMeta) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = CLIP_CONTENT_TYPE
    props.UserProperty = [
        (
            key,
            value.isoformat()
            if isinstance(value, datetime)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value),
        )
        for key, value in meta.model_dump(exclude_none=True).items()
    ]
    return props


def from_properties(props: Properties | None) -> ClipChunkMeta:
    content_type = getattr(props, "ContentType", None)
    if content_type != CLIP_CONTENT_TYPE:
        raise ProtocolError(
            "bad_properties", f"content type must be {CLIP_CONTENT_TYPE}, got {content_type!r}"
        )
    raw: dict[str, object] = dict(user_properties(props))
    if raw.get("v") == "1":  # a Literal is matched exactly, not coerced
        raw["v"] = 1
    try:
        # Values are strings; pydantic's lax mode reads "12", "2.5" and "true" as the fields' types.
        return ClipChunkMeta.model_validate(raw)
    except ValidationError as exc:
        raise ProtocolError("bad_properties", f"clip chunk properties: {short_error(exc)}") from None


def validate_clip_chunk(
    topic_name: str,
    payload: bytes,
    props: Properties | None,
    limits: FrameLimits | None = None,
    now: datetime | None = None,
) -> ClipChunkMeta:
    """The chunk's metadata, or ``ProtocolError`` with the reason (SPEC.md lists them in order)."""
    limits = limits or FrameLimits()
    device_id = check_envelope(topic_name, payload, topics.Kind.CLIP, limits, "chunk")
    meta = from_properties(props)
    check_body(device_id, payload, meta.device, meta.size, meta.sha256, "chunk")
    if meta.chunk_index >= meta.chunk_count:
        raise ProtocolError(
            "chunk_out_of_range", f"chunk {meta.chunk_index} of a clip of {meta.chunk_count} chunks"
        )
    if meta.size > meta.clip_size:
        raise ProtocolError("size_mismatch", f"chunk of {meta.size} bytes in a clip of {meta.clip_size}")
    now = now or datetime.now(UTC)
    if meta.started_at - now > limits.max_clock_skew:
        raise ProtocolError(
            "clock_in_future",
            f"clip start {meta.started_at.isoformat()} is ahead of the station clock; check the camera's clock",
        )
    return meta


@dataclass
class ClipParts:
    """The chunks of one clip received so far; ``add`` says what a new chunk means."""

    first: ClipChunkMeta
    sha256s: dict[int, str]  # chunk index -> sha256 of its bytes

    @classmethod
    def start(cls, meta: ClipChunkMeta) -> ClipParts:
        return cls(meta, {meta.chunk_index: meta.sha256})

    def add(self, meta: ClipChunkMeta) -> Literal["stored", "duplicate"]:
        """Record a chunk: ``duplicate`` for one already held with the same bytes; ProtocolError for a
        chunk that contradicts the clip (``clip_mismatch``) or an index held with other bytes
        (``chunk_conflict``)."""
        if meta.clip_fields() != self.first.clip_fields():
            raise ProtocolError(
                "clip_mismatch", f"chunk {meta.chunk_index} disagrees with clip {meta.clip_id}"
            )
        held = self.sha256s.get(meta.chunk_index)
        if held == meta.sha256:
            return "duplicate"
        if held is not None:
            raise ProtocolError(
                "chunk_conflict", f"chunk {meta.chunk_index} of clip {meta.clip_id} came with other bytes"
            )
        self.sha256s[meta.chunk_index] = meta.sha256
        return "stored"

    @property
    def missing(self) -> list[int]:
        return [i for i in range(self.first.chunk_count) if i not in self.sha256s]


def join_chunks(parts: ClipParts, read: Any) -> bytes:
    """The whole clip from its chunks in index order (``read(index) -> bytes``); ProtocolError when a
    chunk is missing (``clip_incomplete``) or the joined bytes are not the clip (``clip_checksum_mismatch``)."""
    if parts.missing:
        raise ProtocolError(
            "clip_incomplete", f"clip {parts.first.clip_id} lacks chunks {parts.missing[:10]}"
        )
    data = b"".join(read(i) for i in range(parts.first.chunk_count))
    if len(data) != parts.first.clip_size or hashlib.sha256(data).hexdigest() != parts.first.clip_sha256:
        raise ProtocolError("clip_checksum_mismatch", f"clip {parts.first.clip_id} does not match its sha256")
    return data
