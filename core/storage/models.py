"""Tables of the station's core: devices, frames (media), heartbeats, dead letters, and the pipeline's
events and detections. Alerts (``yaguar.alerts.models``) and the dashboard add their own tables on the
same ``Base``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, utcnow


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(120))
    registered: Mapped[bool] = mapped_column(Boolean, default=False, doc="added with `devices add`")
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str | None] = mapped_column(String(16), doc="online/offline from the retained status")
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_heartbeat: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)


class Media(Base):
    """One stored frame. ``(device_id, seq)`` is the idempotency key of the wire contract."""

    __tablename__ = "media"
    __table_args__ = (
        UniqueConstraint("device_id", "seq"),
        Index("ix_media_device_captured", "device_id", "captured_at"),
        Index("ix_media_captured", "captured_at"),
        Index("ix_media_process_state", "process_state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    capture_id: Mapped[str] = mapped_column(String(64))
    agent_event_id: Mapped[str] = mapped_column(String(64), doc="the agent's trigger/burst id")
    burst_index: Mapped[int] = mapped_column(Integer)
    burst_size: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(16))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    utc_offset_min: Mapped[int] = mapped_column(Integer, doc="the camera's UTC offset, minutes")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(200), doc="relative to the media root")
    # Pipeline progress: pending -> done | skipped | failed. A pending frame is picked up after restart.
    process_state: Mapped[str] = mapped_column(String(16), default="pending")
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    process_note: Mapped[str | None] = mapped_column(String(200), doc="why a frame was skipped or failed")
    motion_score: Mapped[float | None] = mapped_column(Float)
    # Which pipeline worker is analysing the frame, and until when (the database's clock): see
    # yaguar.server.pipeline.leases. Cleared when the results are stored.
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), index=True)

    detections: Mapped[list[Detection]] = relationship(back_populates="media", cascade="all, delete-orphan")


class Heartbeat(Base):
    __tablename__ = "heartbeats"
    __table_args__ = (Index("ix_heartbeats_device_received", "device_id", "received_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class DeadLetter(Base):
    """A message the station refused, with the reason. The payload itself is not kept (it may be hostile)."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    topic: Mapped[str] = mapped_column(String(300))
    device_id: Mapped[str | None] = mapped_column(String(63), doc="as claimed by the topic; not trusted")
    reason: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[str] = mapped_column(Text)
    payload_size: Mapped[int] = mapped_column(Integer)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Event(Base):
    """Frames of one burst, or close in time on one camera: what a ranger thinks of as one sighting."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_device_started", "device_id", "started_at"),
        Index("ix_events_started", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    utc_offset_min: Mapped[int] = mapped_column(Integer, default=0)
    frame_count: Mapped[int] = mapped_column(Integer, default=0)
    category: Mapped[str] = mapped_column(String(16), default="blank", doc="animal, person, vehicle or blank")
    species: Mapped[str | None] = mapped_column(String(120), doc="scientific name, when known")
    count: Mapped[int] = mapped_column(Integer, default=0, doc="individuals seen at once")
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    model: Mapped[str | None] = mapped_column(String(120), doc="models that produced the label, name@version")
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Detection(Base):
    """One box on one frame, normalised to the image: [x, y, width, height] as MegaDetector writes them."""

    __tablename__ = "detections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id"), index=True)
    model: Mapped[str] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(120), doc="the model's own label")
    confidence: Mapped[float] = mapped_column(Float)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    w: Mapped[float] = mapped_column(Float)
    h: Mapped[float] = mapped_column(Float)
    species: Mapped[str | None] = mapped_column(String(120))
    species_confidence: Mapped[float | None] = mapped_column(Float)
    classifier: Mapped[str | None] = mapped_column(String(120))

    media: Mapped[Media] = relationship(back_populates="detections")
