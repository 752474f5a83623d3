"""What the station remembers of each camera's troubles between two looks: whether a trouble is on, since
when, and whether the rangers were told (so a camera that comes back is announced only when its silence
was, and a flapping camera does not alert more than once per cooldown)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from yaguar.storage.base import Base, UTCDateTime


class DeviceCondition(Base):
    __tablename__ = "device_conditions"

    device_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    condition: Mapped[str] = mapped_column(
        String(16), primary_key=True, doc="offline, battery, spool, disk, clock"
    )
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    since: Mapped[datetime] = mapped_column(UTCDateTime, doc="when it began (offline: when last heard)")
    value: Mapped[float | None] = mapped_column(Float, doc="what showed it: seconds, volts, frames, bytes")
    told: Mapped[bool] = mapped_column(Boolean, default=False, doc="an alert went out for this episode")
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, doc="the last alert, for the cooldown")
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
