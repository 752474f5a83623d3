"""The deployments table: one row per camera per placement. A camera that is moved ends its open
deployment and starts a new one, so every frame keeps the position it was taken at."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yaguar.storage.base import Base, UTCDateTime, utcnow


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_device_start", "device_id", "start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    start: Mapped[datetime] = mapped_column(UTCDateTime, doc="when the camera was set up here")
    end: Mapped[datetime | None] = mapped_column(UTCDateTime, doc="when it was taken down; none: still here")
    latitude: Mapped[float] = mapped_column(Float, doc="WGS84 decimal degrees")
    longitude: Mapped[float] = mapped_column(Float, doc="WGS84 decimal degrees")
    uncertainty_m: Mapped[float | None] = mapped_column(Float, doc="radius of the position's error, metres")
    site: Mapped[str | None] = mapped_column(String(120), doc="location name, e.g. Sendero Norte")
    habitat: Mapped[str | None] = mapped_column(String(120))
    camera_model: Mapped[str | None] = mapped_column(String(120))
    camera_height_m: Mapped[float | None] = mapped_column(Float)
    bait: Mapped[bool] = mapped_column(Boolean, default=False)
    comments: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64), doc="user or API")
