"""Adding, changing and moving deployments, with the checks that keep them sound: a position on the
globe, an end after the start, and never two deployments of one camera at the same time.

Every refusal is a :class:`DeploymentError` whose message id is translated on the dashboard and sent
as is by the API.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from yaguar.server.dashboard.refusal import N_, RefusalError
from yaguar.storage.base import utcnow
from yaguar.storage.models import Device

from .models import Deployment

log = logging.getLogger(__name__)


class DeploymentError(RefusalError):
    """A deployment that cannot be stored; the message says why."""


class DeploymentInput(BaseModel):
    """What a person (dashboard form) or a program (API) gives for one deployment."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    latitude: float = Field(description="WGS84 decimal degrees, -90 to 90")
    longitude: float = Field(description="WGS84 decimal degrees, -180 to 180")
    start: datetime = Field(description="set-up time, ISO 8601 with its UTC offset")
    end: datetime | None = Field(default=None, description="taken down; none while the camera is there")
    uncertainty_m: float | None = Field(default=None, description="error radius of the position, metres")
    site: str | None = Field(default=None, max_length=120)
    habitat: str | None = Field(default=None, max_length=120)
    camera_model: str | None = Field(default=None, max_length=120)
    camera_height_m: float | None = Field(default=None, description="lens height above ground, metres")
    bait: bool = False
    comments: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _sound(self) -> DeploymentInput:
        check(self)
        return self


def check(given: DeploymentInput) -> None:
    """Raise :class:`DeploymentError` for the first thing wrong with one deployment on its own."""
    if not -90.0 <= given.latitude <= 90.0:
        raise DeploymentError(
            N_("Latitude %(value)s is out of range: it must be between -90 and 90."), value=given.latitude
        )
    if not -180.0 <= given.longitude <= 180.0:
        raise DeploymentError(
            N_("Longitude %(value)s is out of range: it must be between -180 and 180."), value=given.longitude
        )
    if given.uncertainty_m is not None and not 0.0 <= given.uncertainty_m <= 100_000.0:
        raise DeploymentError(N_("The position's uncertainty must be between 0 and 100000 metres."))
    if given.camera_height_m is not None and not 0.0 <= given.camera_height_m <= 30.0:
        raise DeploymentError(N_("The camera's height must be between 0 and 30 metres."))
    for when in (given.start, given.end):
        if when is not None and when.tzinfo is None:
            raise DeploymentError(N_("Times need their UTC offset, e.g. 2026-11-26T08:00:00-03:00."))
    if given.end is not None and given.end <= given.start:
        raise DeploymentError(N_("The end of a deployment must come after its start."))


def parse(values: dict[str, object]) -> DeploymentInput:
    """Validate raw values; a pydantic error becomes a one-line :class:`DeploymentError`."""
    try:
        return DeploymentInput.model_validate(values)
    except ValidationError as exc:
        for error in exc.errors():
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, DeploymentError):
                raise cause from None
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "input"
        raise DeploymentError(N_("%(field)s: %(problem)s"), field=field, problem=first["msg"]) from None


def deployments_of(db: Session, device_id: str) -> list[Deployment]:
    return list(
        db.scalars(select(Deployment).where(Deployment.device_id == device_id).order_by(Deployment.start))
    )


def current(db: Session, device_id: str, at: datetime | None = None) -> Deployment | None:
    """The deployment a camera is in at ``at`` (now by default)."""
    at = at or utcnow()
    for dep in reversed(deployments_of(db, device_id)):
        if dep.start <= at and (dep.end is None or at < dep.end):
            return dep
    return None


def _overlapping(
    db: Session, device_id: str, given: DeploymentInput, skip_id: int | None
) -> Deployment | None:
    for dep in deployments_of(db, device_id):
        if dep.id == skip_id:
            continue
        starts_before_other_ends = dep.end is None or given.start < dep.end
        ends_after_other_starts = given.end is None or given.end > dep.start
        if starts_before_other_ends and ends_after_other_starts:
            return dep
    return None


def _device(db: Session, device_id: str) -> Device:
    device = db.get(Device, device_id)
    if device is None:
        raise DeploymentError(N_("There is no camera %(device)s."), device=device_id)
    return device


def _apply(dep: Deployment, given: DeploymentInput) -> None:
    for name, value in given.model_dump().items():
        setattr(dep, name, value)


def _sync_device(db: Session, device: Device) -> None:
    """The camera's own position is that of its current deployment (the map and old readers use it)."""
    dep = current(db, device.id)
    if dep is not None:
        device.latitude, device.longitude = dep.latitude, dep.longitude


def add(db: Session, device_id: str, given: DeploymentInput, by: str) -> Deployment:
    device = _device(db, device_id)
    clash = _overlapping(db, device_id, given, skip_id=None)
    if clash is not None:
        raise DeploymentError(
            N_("This deployment overlaps deployment %(other)s of the same camera (from %(start)s)."),
            other=clash.id,
            start=clash.start.isoformat(timespec="minutes"),
        )
    dep = Deployment(device_id=device_id, created_by=by[:64], created_at=utcnow())
    _apply(dep, given)
    db.add(dep)
    db.flush()
    _sync_device(db, device)
    log.info(
        "deployment %s of %s added by %s at %.6f, %.6f", dep.id, device_id, by, dep.latitude, dep.longitude
    )
    return dep


def update(db: Session, deployment_id: int, given: DeploymentInput, by: str) -> Deployment:
    dep = db.get(Deployment, deployment_id)
    if dep is None:
        raise DeploymentError(N_("There is no deployment %(id)s."), id=deployment_id)
    clash = _overlapping(db, dep.device_id, given, skip_id=dep.id)
    if clash is not None:
        raise DeploymentError(
            N_("This deployment overlaps deployment %(other)s of the same camera (from %(start)s)."),
            other=clash.id,
            start=clash.start.isoformat(timespec="minutes"),
        )
    _apply(dep, given)
    db.flush()
    _sync_device(db, _device(db, dep.device_id))
    log.info("deployment %s of %s changed by %s", dep.id, dep.device_id, by)
    return dep


def place(
    db: Session, device_id: str, latitude: float, longitude: float, at: datetime, by: str
) -> Deployment:
    """Set a camera's position at ``at``: the first placement opens a deployment; a different position
    ends the open one at ``at`` and starts a new one with the same set-up (a moved camera); the same
    position changes nothing."""
    _device(db, device_id)
    open_dep = current(db, device_id, at)
    if open_dep is None:
        return add(db, device_id, parse({"latitude": latitude, "longitude": longitude, "start": at}), by)
    if (open_dep.latitude, open_dep.longitude) == (latitude, longitude):
        return open_dep
    moved = parse(
        {
            "latitude": latitude,
            "longitude": longitude,
            "start": at,
            "end": open_dep.end,
            "uncertainty_m": open_dep.uncertainty_m,
            "site": open_dep.site,
            "habitat": open_dep.habitat,
            "camera_model": open_dep.camera_model,
            "camera_height_m": open_dep.camera_height_m,
            "bait": open_dep.bait,
        }
    )
    if at <= open_dep.start:
        raise DeploymentError(N_("A camera can only be moved after its current deployment started."))
    open_dep.end = at
    db.flush()
    log.info("camera %s moved: deployment %s ends at %s", device_id, open_dep.id, at.isoformat())
    return add(db, device_id, moved, by)
