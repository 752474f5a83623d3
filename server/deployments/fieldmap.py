"""The offline map: every camera at its position on a scaled plan (no tiles: nothing can be fetched in
the field), with its state and latest species, each linked to the camera's page.

The plan is an equirectangular projection around the cameras' mean latitude, which over the few
kilometres of a camera grid distorts distances by far less than a GPS fix is off; the scale bar says
how far apart the cameras are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from yaguar.server.dashboard.core import dashboard_of
from yaguar.server.dashboard.guard import requires
from yaguar.storage.models import Device, Event, Media

WIDTH, HEIGHT, MARGIN = 900, 600, 60
EARTH_M = 6_371_000.0
NICE_STEPS = (1, 2, 5)


@dataclass(frozen=True)
class MapCamera:
    device_id: str
    name: str
    online: bool
    latitude: float | None
    longitude: float | None
    species: str | None
    seen_at: datetime | None
    offset_min: int
    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True)
class Plan:
    cameras: list[MapCamera]
    unplaced: list[MapCamera]
    scale_px: float  # length of the scale bar
    scale_label: str


def _latest(db: Session, device_id: str) -> tuple[str | None, datetime | None, int]:
    row = db.execute(
        select(Event.species, Event.started_at, Event.utc_offset_min)
        .where(Event.device_id == device_id, Event.species.is_not(None))
        .order_by(Event.started_at.desc())
        .limit(1)
    ).first()
    if row is not None:
        return row[0], row[1], row[2]
    offset = db.scalar(
        select(Media.utc_offset_min)
        .where(Media.device_id == device_id)
        .order_by(Media.captured_at.desc())
        .limit(1)
    )
    return None, None, offset or 0


def load_plan(db: Session) -> Plan:
    cams = []
    for device in db.scalars(select(Device).where(Device.revoked.is_(False)).order_by(Device.id)):
        species, seen, offset = _latest(db, device.id)
        cams.append(
            MapCamera(
                device.id,
                device.name or device.id,
                device.status == "online",
                device.latitude,
                device.longitude,
                species,
                seen,
                offset,
            )
        )
    return project(cams)


def project(cams: list[MapCamera]) -> Plan:
    placed = [c for c in cams if c.latitude is not None and c.longitude is not None]
    unplaced = [c for c in cams if c not in placed]
    if not placed:
        return Plan([], unplaced, 0.0, "")
    mean_lat = math.radians(sum(c.latitude or 0.0 for c in placed) / len(placed))
    # metres east and north of the first camera
    xs = [
        math.radians((c.longitude or 0.0) - (placed[0].longitude or 0.0)) * EARTH_M * math.cos(mean_lat)
        for c in placed
    ]
    ys = [math.radians((c.latitude or 0.0) - (placed[0].latitude or 0.0)) * EARTH_M for c in placed]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 100.0)  # at least 100 m across
    per_m = min(WIDTH, HEIGHT) - 2 * MARGIN
    scale = per_m / span
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    shown = [
        MapCamera(**{**c.__dict__, "x": WIDTH / 2 + (x - cx) * scale, "y": HEIGHT / 2 - (y - cy) * scale})
        for c, x, y in zip(placed, xs, ys, strict=True)
    ]
    metres = _nice(span / 4)
    label = f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"
    return Plan(shown, unplaced, metres * scale, label)


def _nice(value: float) -> float:
    """The largest 1, 2 or 5 times a power of ten not above ``value``."""
    power = 10 ** math.floor(math.log10(value))
    return max(step * power for step in NICE_STEPS if step * power <= value)


@requires("viewer")
async def map_page(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    plan = await dash.read(load_plan)
    return await dash.render(request, "map.html", plan=plan, width=WIDTH, height=HEIGHT)


def routes() -> list[web.RouteDef]:
    return [web.get("/map", map_page)]
