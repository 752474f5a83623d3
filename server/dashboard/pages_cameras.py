"""Health of every camera: presence from the retained status, the latest heartbeat, frames today."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yaguar.storage.base import utcnow
from yaguar.storage.models import Device, Heartbeat, Media

from .core import dashboard_of
from .guard import requires


@dataclass
class CameraRow:
    device: Device
    online: bool
    heartbeat: dict[str, Any]
    clock_drift_s: float | None
    frames_today: int
    latest_media_id: int | None
    latest_captured_at: datetime | None
    offset_min: int = 0  # the camera's UTC offset (from its newest frame): times are shown in it


def camera_rows(db: Session) -> list[CameraRow]:
    midnight = datetime.combine(utcnow().date(), time(), UTC)
    rows = []
    for device in db.scalars(select(Device).order_by(Device.id)):
        beat = db.execute(
            select(Heartbeat.sent_at, Heartbeat.received_at)
            .where(Heartbeat.device_id == device.id)
            .order_by(Heartbeat.received_at.desc())
            .limit(1)
        ).first()
        # Positive: the camera's clock is ahead of the station's (network delay makes it look behind).
        drift = (beat.sent_at - beat.received_at).total_seconds() if beat else None
        today = db.scalar(
            select(func.count())
            .select_from(Media)
            .where(Media.device_id == device.id, Media.captured_at >= midnight)
        )
        latest = db.execute(
            select(Media.id, Media.captured_at, Media.utc_offset_min)
            .where(Media.device_id == device.id)
            .order_by(Media.captured_at.desc())
            .limit(1)
        ).first()
        rows.append(
            CameraRow(
                device=device,
                online=device.status == "online",
                heartbeat=device.last_heartbeat or {},
                clock_drift_s=drift,
                frames_today=today or 0,
                latest_media_id=latest.id if latest else None,
                latest_captured_at=latest.captured_at if latest else None,
                offset_min=latest.utc_offset_min if latest else 0,
            )
        )
    return rows


@requires("viewer")
async def cameras(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    rows = await dash.read(camera_rows)
    return await dash.render(request, "cameras.html", cameras=rows)


def routes() -> list[web.RouteDef]:
    return [web.get("/cameras", cameras)]
