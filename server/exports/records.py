"""What every export reads: events, frames with their boxes, cameras and the newest human review of each
event, optionally limited to a time window and a camera. Read in batches, so a big station's export
does not hold every frame in memory at once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from yaguar.server.dashboard.box_review import BoxReview
from yaguar.server.dashboard.models import Review, User
from yaguar.storage.models import Device, Event, Media

BATCH = 500


@dataclass(frozen=True)
class ExportScope:
    since: datetime | None = None
    until: datetime | None = None
    device: str | None = None


@dataclass(frozen=True)
class HumanReview:
    action: str
    category: str
    species: str | None
    count: int
    comment: str | None
    by: str
    at: datetime


def _events(scope: ExportScope) -> Select[Event]:
    stmt = select(Event)
    if scope.device:
        stmt = stmt.where(Event.device_id == scope.device)
    if scope.since:
        stmt = stmt.where(Event.started_at >= scope.since)
    if scope.until:
        stmt = stmt.where(Event.started_at < scope.until)
    return stmt.order_by(Event.started_at, Event.id)


def iter_events(db: Session, scope: ExportScope) -> Iterator[Event]:
    yield from db.scalars(_events(scope).execution_options(yield_per=BATCH))


def iter_media(db: Session, scope: ExportScope, processed_only: bool = False) -> Iterator[Media]:
    """Frames in the scope, with their detections, in capture order."""
    stmt = select(Media)
    if scope.device:
        stmt = stmt.where(Media.device_id == scope.device)
    if scope.since:
        stmt = stmt.where(Media.captured_at >= scope.since)
    if scope.until:
        stmt = stmt.where(Media.captured_at < scope.until)
    if processed_only:
        stmt = stmt.where(Media.process_state.in_(("done", "skipped", "failed")))
    stmt = stmt.order_by(Media.captured_at, Media.id).options(selectinload(Media.detections))
    yield from db.scalars(stmt.execution_options(yield_per=BATCH))


def devices(db: Session) -> dict[str, Device]:
    return {device.id: device for device in db.scalars(select(Device))}


def latest_reviews(db: Session, scope: ExportScope) -> dict[int, HumanReview]:
    """The newest review of each event in the scope (older ones stay in the database as history)."""
    event_ids = _events(scope).with_only_columns(Event.id).order_by(None).scalar_subquery()
    stmt = (
        select(Review, User.username)
        .join(User, User.id == Review.user_id)
        .where(Review.event_id.in_(event_ids))
        .order_by(Review.created_at, Review.id)
    )
    latest: dict[int, HumanReview] = {}
    for review, username in db.execute(stmt):
        latest[review.event_id] = HumanReview(
            review.action,
            review.category,
            review.species,
            review.count,
            review.comment,
            username,
            review.created_at,
        )
    return latest


@dataclass(frozen=True)
class HumanBoxReview:
    category: str
    species: str | None
    by: str
    at: datetime


def box_reviews(db: Session) -> dict[int, HumanBoxReview]:
    """The newest review of each reviewed box (boxes corrected one by one are few)."""
    stmt = (
        select(BoxReview, User.username)
        .join(User, User.id == BoxReview.user_id)
        .order_by(BoxReview.created_at, BoxReview.id)
    )
    return {
        review.detection_id: HumanBoxReview(review.category, review.species, username, review.created_at)
        for review, username in db.execute(stmt)
    }


def local_iso(value: datetime, offset_min: int) -> str:
    """ISO 8601 in the camera's local time with its offset, to the second (Camtrap DP's datetime format)."""
    return value.astimezone(timezone(timedelta(minutes=offset_min))).replace(microsecond=0).isoformat()
