"""Sampling effort from the deployment records: how long each camera stood in the field during the
period, in camera-days, and on which local days. A camera without a deployment in the period has no
effort, so its numbers are "no data", never a division by zero."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cached_property

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from yaguar.server.deployments.models import Deployment
from yaguar.storage.base import utcnow
from yaguar.storage.models import Device, Media

from .filters import AnalysisFilter

EPOCH = date(1970, 1, 1)


@dataclass
class CameraEffort:
    device_id: str
    name: str
    offset_min: int
    camera_days: float = 0.0  # deployed time inside the period, in days
    days: set[date] = field(default_factory=set)  # local days with any deployed time
    positions: list[tuple[datetime, datetime, float, float]] = field(default_factory=list)
    home: tuple[float, float] | None = None  # the camera's own position, for one without deployments

    def position_on(self, day: date) -> tuple[float, float] | None:
        """Where the camera stood at local noon of ``day`` (sun times are computed there)."""
        if len(self.positions) == 1:  # most cameras: one place all along, no time to compare
            return self.positions[0][2], self.positions[0][3]
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=self.tz)
        for start, end, lat, lon in self.positions:
            if start <= noon < end:
                return lat, lon
        return (self.positions[-1][2], self.positions[-1][3]) if self.positions else self.home

    def positions_on(self, numbers: np.ndarray) -> list[tuple[float, float] | None]:
        """``position_on`` for many local days at once, given as day numbers since 1970."""
        if len(self.positions) <= 1:
            return [self.position_on(EPOCH)] * len(numbers)
        noon = numbers * 86_400 + 43_200 - self.offset_min * 60  # local noon, as UTC seconds
        starts = np.array([start.timestamp() for start, _end, _lat, _lon in self.positions])
        ends = np.array([end.timestamp() for _start, end, _lat, _lon in self.positions])
        at = np.searchsorted(starts, noon, side="right") - 1  # the last deployment started by then
        inside = (at >= 0) & (noon < ends[at.clip(0)])
        last = self.positions[-1]
        return [
            (self.positions[i][2], self.positions[i][3]) if ok else (last[2], last[3])
            for i, ok in zip(at.tolist(), inside.tolist(), strict=True)
        ]

    @cached_property
    def tz(self) -> timezone:
        return timezone(timedelta(minutes=self.offset_min))


def camera_offsets(db: Session, device_ids: list[str]) -> dict[str, int]:
    """Each camera's UTC offset, from its newest frame (0 before it sent any), in one query: one index
    probe per camera (a grouped MAX over the frames would read all of them)."""
    newest = (
        select(Media.utc_offset_min)
        .where(Media.device_id == Device.id)
        .order_by(Media.captured_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    stmt = select(Device.id, newest).where(Device.id.in_(device_ids))
    found = {
        str(device): int(offset) for device, offset in db.connection().execute(stmt) if offset is not None
    }
    return {device_id: found.get(device_id, 0) for device_id in device_ids}


def effort(db: Session, flt: AnalysisFilter, now: datetime | None = None) -> dict[str, CameraEffort]:
    """Effort of every camera (or the filtered one) in the period, keyed by device id."""
    now = now or utcnow()
    devices = select(Device.id, Device.name, Device.latitude, Device.longitude).order_by(Device.id)
    if flt.camera:
        devices = devices.where(Device.id == flt.camera)
    rows = list(db.execute(devices))
    offsets = camera_offsets(db, [str(row.id) for row in rows])
    result = {
        row.id: CameraEffort(
            row.id,
            row.name or row.id,
            offsets[row.id],
            home=(row.latitude, row.longitude)
            if row.latitude is not None and row.longitude is not None
            else None,
        )
        for row in rows
    }
    deps = select(Deployment).order_by(Deployment.device_id, Deployment.start)
    if flt.camera:
        deps = deps.where(Deployment.device_id == flt.camera)
    for dep in db.scalars(deps):
        cam = result.get(dep.device_id)
        if cam is None:
            continue
        tz = timezone(timedelta(minutes=cam.offset_min))
        period_start = datetime.combine(flt.start, time(), tz)
        period_end = datetime.combine(flt.end + timedelta(days=1), time(), tz)
        dep_end = dep.end if dep.end is not None else max(now, dep.start)
        cam.positions.append((dep.start, dep_end, dep.latitude, dep.longitude))
        start, end = max(dep.start, period_start), min(dep_end, period_end)
        if end <= start:
            continue
        cam.camera_days += (end - start).total_seconds() / 86_400
        first = start.astimezone(tz).date()
        last = (end - timedelta(microseconds=1)).astimezone(tz).date()  # the day of the last instant
        cam.days.update(date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1))
    return result


def as_utc(day: date, offset_min: int) -> datetime:
    """Local midnight of ``day`` at a camera, as UTC."""
    return datetime.combine(day, time(), timezone(timedelta(minutes=offset_min))).astimezone(UTC)
