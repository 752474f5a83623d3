"""When each camera was heard from (a heartbeat or a frame), counted in hours, for the uptime page.

A year of heartbeats is hundreds of thousands of rows, too many to count on each request. The database
keeps a day-by-day summary instead: one row per camera and UTC day with the hours heard as a 24-bit
mask, updated by triggers on every heartbeat and frame inserted (migration e004), so every writer keeps
it up to date without knowing of it. Whole UTC days are read from the summary; the part-days at either
end of a period (periods run from local midnight at the camera) are counted from the rows themselves.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, Integer, String, func, select, union_all
from sqlalchemy.orm import Mapped, Session, mapped_column

from yaguar.storage.base import Base
from yaguar.storage.models import Heartbeat, Media

from .sqltime import utc_hour


class HeardDay(Base):
    """The UTC hours of one day in which a camera was heard: bit ``h`` set for the hour ``h``."""

    __tablename__ = "device_heard_days"

    device_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    hours: Mapped[int] = mapped_column(Integer)


def hours_heard(db: Session, ids: list[str], since: datetime, until: datetime) -> dict[str, tuple[int, int]]:
    """``(hours heard, UTC days heard)`` per camera between two UTC instants."""
    first = _midnight(since) if since == _midnight(since) else _midnight(since) + timedelta(days=1)
    last = _midnight(until)
    heard: dict[str, list[int]] = {}
    if first < last:
        stmt = select(HeardDay.device_id, HeardDay.hours).where(
            HeardDay.device_id.in_(ids), HeardDay.day >= first.date(), HeardDay.day < last.date()
        )
        for device, mask in db.execute(stmt):
            if mask:
                total = heard.setdefault(str(device), [0, 0])
                total[0] += int(mask).bit_count()
                total[1] += 1
        edges = [(since, first), (last, until)]
    else:
        edges = [(since, until)]
    # The part-days lie on other UTC days than the summary's and than each other: the counts add up.
    for lo, hi in edges:
        if lo < hi:
            for device, hours, days in db.execute(_counted(db, ids, lo, hi)):
                total = heard.setdefault(str(device), [0, 0])
                total[0] += int(hours)
                total[1] += int(days)
    return {device: (hours, days) for device, (hours, days) in heard.items()}


def _midnight(when: datetime) -> datetime:
    return datetime.combine(when.astimezone(UTC).date(), time(), UTC)


def _counted(db: Session, ids: list[str], since: datetime, until: datetime) -> Any:
    """Distinct hours and UTC days with a heartbeat or a frame, per camera, from the rows themselves."""
    parts = [
        select(table.device_id.label("device"), utc_hour(db, column).label("hour")).where(
            table.device_id.in_(ids), column >= since, column < until
        )
        for table, column in ((Heartbeat, Heartbeat.received_at), (Media, Media.captured_at))
    ]
    both = union_all(*parts).subquery()
    return select(
        both.c.device,
        func.count(func.distinct(both.c.hour)),
        func.count(func.distinct(func.substr(both.c.hour, 1, 10))),
    ).group_by(both.c.device)
