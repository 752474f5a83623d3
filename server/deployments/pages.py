"""A camera's own page: its health, where it stands (deployments), and for admins the forms to set its
position, add a deployment or change one. Times in the forms are the camera's local time."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from yaguar.server.dashboard.core import dashboard_of, posted
from yaguar.server.dashboard.guard import requires
from yaguar.server.dashboard.refusal import N_
from yaguar.storage.base import utcnow
from yaguar.storage.models import Device, Event, Media

from . import records
from .models import Deployment
from .records import DeploymentError

log = logging.getLogger(__name__)

FIELDS = ("uncertainty_m", "site", "habitat", "camera_model", "camera_height_m", "comments")


@dataclass
class CameraView:
    device: Device
    offset_min: int
    deployments: list[Deployment]
    latest_event: Event | None


def camera_offset(db: Session, device_id: str) -> int:
    """The camera's UTC offset in minutes, from its newest frame (0 before it sent any)."""
    offset = db.scalar(
        select(Media.utc_offset_min)
        .where(Media.device_id == device_id)
        .order_by(Media.captured_at.desc())
        .limit(1)
    )
    return offset or 0


def _load(db: Session, device_id: str) -> CameraView | None:
    device = db.get(Device, device_id)
    if device is None:
        return None
    latest = db.scalars(
        select(Event).where(Event.device_id == device_id).order_by(Event.started_at.desc()).limit(1)
    ).first()
    return CameraView(device, camera_offset(db, device_id), records.deployments_of(db, device_id), latest)


@requires("viewer")
async def camera_page(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    device_id = request.match_info["device_id"]
    view = await dash.read(lambda db: _load(db, device_id))
    if view is None:
        raise web.HTTPNotFound(text="no such camera")
    now_local = utcnow() + timedelta(minutes=view.offset_min)
    return await dash.render(
        request, "camera.html", view=view, now_local=now_local.strftime("%Y-%m-%dT%H:%M")
    )


def local_time(raw: str, offset_min: int, name: str) -> datetime | None:
    """A ``datetime-local`` form value read as the camera's local time."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise DeploymentError(
            N_("%(field)s must be a date and time like 2026-11-26T08:00."), field=name
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone(timedelta(minutes=offset_min)))
    return value


def _number(raw: Any, name: str) -> float | None:
    text = str(raw or "").strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise DeploymentError(N_("%(field)s must be a number."), field=name) from None


def form_values(form: Any, offset_min: int) -> dict[str, Any]:
    values: dict[str, Any] = {
        "latitude": _number(form.get("latitude"), "latitude"),
        "longitude": _number(form.get("longitude"), "longitude"),
        "start": local_time(str(form.get("start") or ""), offset_min, "start"),
        "end": local_time(str(form.get("end") or ""), offset_min, "end"),
        "uncertainty_m": _number(form.get("uncertainty_m"), "uncertainty_m"),
        "camera_height_m": _number(form.get("camera_height_m"), "camera_height_m"),
        "bait": form.get("bait") in ("on", "true", "1"),
    }
    for name in ("site", "habitat", "camera_model", "comments"):
        values[name] = str(form.get(name) or "").strip() or None
    if values["latitude"] is None or values["longitude"] is None:
        raise DeploymentError(N_("Give both latitude and longitude."))
    if values["start"] is None:
        raise DeploymentError(N_("Give the start of the deployment."))
    return values


async def _change(request: web.Request, device_id: str, change: Any, what: str) -> web.StreamResponse:
    dash, user, form = await posted(request)

    def store(db: Session) -> int | None:
        if db.get(Device, device_id) is None:
            return None
        return int(change(db, form, camera_offset(db, device_id), user.username).id)

    try:
        dep_id = await dash.write(store)
    except DeploymentError as exc:
        raise await dash.refuse(request, exc, f"{what} of {device_id} by {user.username}") from None
    if dep_id is None:
        raise web.HTTPNotFound(text="no such camera")
    log.info("%s: camera %s, deployment %s, by %s", what, device_id, dep_id, user.username)
    raise web.HTTPSeeOther(f"/cameras/{device_id}")


@requires("admin")
async def set_position(request: web.Request) -> web.StreamResponse:
    device_id = request.match_info["device_id"]

    def change(db: Session, form: Any, offset: int, by: str) -> Deployment:
        lat, lon = _number(form.get("latitude"), "latitude"), _number(form.get("longitude"), "longitude")
        if lat is None or lon is None:
            raise DeploymentError(N_("Give both latitude and longitude."))
        at = local_time(str(form.get("at") or ""), offset, "at") or utcnow()
        return records.place(db, device_id, lat, lon, at, by)

    return await _change(request, device_id, change, "position set")


@requires("admin")
async def add_deployment(request: web.Request) -> web.StreamResponse:
    device_id = request.match_info["device_id"]

    def change(db: Session, form: Any, offset: int, by: str) -> Deployment:
        return records.add(db, device_id, records.parse(form_values(form, offset)), by)

    return await _change(request, device_id, change, "deployment added")


@requires("admin")
async def edit_deployment(request: web.Request) -> web.StreamResponse:
    device_id = request.match_info["device_id"]
    dep_id = int(request.match_info["deployment_id"])

    def change(db: Session, form: Any, offset: int, by: str) -> Deployment:
        dep = db.get(Deployment, dep_id)
        if dep is None or dep.device_id != device_id:
            raise DeploymentError(N_("There is no deployment %(id)s."), id=dep_id)
        return records.update(db, dep_id, records.parse(form_values(form, offset)), by)

    return await _change(request, device_id, change, "deployment changed")


def routes() -> list[web.RouteDef]:
    camera = r"/cameras/{device_id:[A-Za-z0-9_.-]{1,63}}"
    return [
        web.get(camera, camera_page),
        web.post(camera + "/position", set_position),
        web.post(camera + "/deployments", add_deployment),
        web.post(camera + r"/deployments/{deployment_id:\d{1,18}}", edit_deployment),
    ]
