"""What the pages read: the feed with its filters, paged by key (started_at, id) rather than OFFSET, so
page 1 and page 2,000 cost the same; and the pieces each event row shows (thumbnail, human review)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, text
from sqlalchemy.orm import Session

from yaguar.storage.models import Detection, Device, Event, Media

from .models import Review, User
from .refusal import N_, RefusalError

CATEGORIES = ("animal", "person", "vehicle", "blank")
REVIEW_STATES = ("pending", "reviewed")


class FilterError(RefusalError):
    """A filter or cursor in the URL that does not parse; the message says which."""


@dataclass(frozen=True)
class FeedFilter:
    camera: str | None = None
    species: str | None = None
    category: str | None = None
    day_from: date | None = None
    day_to: date | None = None
    review: str | None = None
    ids: tuple[int, ...] = field(default=())  # the live feed asks for just these events

    @classmethod
    def from_query(cls, query: Any) -> FeedFilter:
        def text(name: str, limit: int) -> str | None:
            value = (query.get(name) or "").strip()
            if len(value) > limit:
                raise FilterError(N_("%(name)s is longer than %(limit)d characters"), name=name, limit=limit)
            return value or None

        category = text("category", 16)
        if category is not None and category not in CATEGORIES:
            raise FilterError(N_("unknown category %(value)s"), value=category)
        review = text("review", 16)
        if review is not None and review not in REVIEW_STATES:
            raise FilterError(N_("unknown review state %(value)s"), value=review)
        ids: tuple[int, ...] = ()
        if raw_ids := text("ids", 2000):
            try:
                ids = tuple(int(part) for part in raw_ids.split(",") if part)[:200]
            except ValueError:
                raise FilterError(N_("ids must be numbers separated by commas")) from None
        return cls(
            camera=text("camera", 63),
            species=text("species", 120),
            category=category,
            day_from=parse_day(text("from", 10), "from"),
            day_to=parse_day(text("to", 10), "to"),
            review=review,
            ids=ids,
        )

    def query_string(self, **extra: str) -> str:
        pairs = {
            "camera": self.camera,
            "species": self.species,
            "category": self.category,
            "from": self.day_from.isoformat() if self.day_from else None,
            "to": self.day_to.isoformat() if self.day_to else None,
            "review": self.review,
            **extra,
        }
        return urlencode({k: v for k, v in pairs.items() if v})

    def without_ids(self) -> FeedFilter:
        return replace(self, ids=())


def parse_day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(N_("%(name)s must be a date like 2026-11-26"), name=name) from None


def encode_cursor(started_at: datetime, event_id: int) -> str:
    raw = f"{started_at.astimezone(UTC).isoformat()}|{event_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, event_id = raw.split("|")
        started = datetime.fromisoformat(when)
        if started.tzinfo is None:
            raise ValueError("naive")
        return started, int(event_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise FilterError(N_("the page cursor is not valid")) from None


@dataclass
class FeedRow:
    event: Event
    camera_name: str
    thumb_media_id: int | None
    review: Review | None
    reviewer: str | None


@dataclass
class FeedPage:
    rows: list[FeedRow]
    next_cursor: str | None


def feed_page(db: Session, flt: FeedFilter, cursor: str | None, page_size: int) -> FeedPage:
    conditions: list[ColumnElement[bool]] = []
    if flt.ids:
        conditions.append(Event.id.in_(flt.ids))
    if flt.camera:
        conditions.append(Event.device_id == flt.camera)
    if flt.category:
        conditions.append(Event.category == flt.category)
    if flt.day_from:
        conditions.append(Event.started_at >= datetime.combine(flt.day_from, time(), UTC))
    if flt.day_to:
        conditions.append(Event.started_at < datetime.combine(flt.day_to + timedelta(days=1), time(), UTC))
    if flt.review:
        reviewed = exists().where(Review.event_id == Event.id)
        conditions.append(reviewed if flt.review == "reviewed" else ~reviewed)
    if cursor:
        started, event_id = decode_cursor(cursor)
        # Written as a range on started_at first, so the (started_at, rowid) index drives the scan.
        conditions.append(
            and_(Event.started_at <= started, or_(Event.started_at < started, Event.id < event_id))
        )
    # A species is what the machine said (read through the (species, started_at) index) or what a
    # reviewer said (the few reviewed events): two short queries merged, each already a page long,
    # instead of one OR that would test every event in date order.
    variants: list[list[Any]] = [[]]
    if flt.species:
        reviewed_as = select(Review.event_id).where(Review.species == flt.species)
        variants = [[Event.species == flt.species], [Event.id.in_(reviewed_as)]]
    found: dict[int, Event] = {}
    for extra in variants:
        stmt = (
            select(Event)
            .where(*conditions, *extra)
            .order_by(Event.started_at.desc(), Event.id.desc())
            .limit(page_size + 1)
        )
        for event in db.scalars(stmt):
            found[event.id] = event
    events = sorted(found.values(), key=lambda e: (e.started_at, e.id), reverse=True)[: page_size + 1]
    more = len(events) > page_size
    events = events[:page_size]
    rows = decorate(db, events)
    next_cursor = encode_cursor(events[-1].started_at, events[-1].id) if more and events else None
    return FeedPage(rows, next_cursor)


def decorate(db: Session, events: list[Event]) -> list[FeedRow]:
    """Add each event's camera name, best frame (for the thumbnail) and newest review: three queries
    for the whole page, whatever its length."""
    if not events:
        return []
    ids = [event.id for event in events]
    device_ids = {e.device_id for e in events}
    names = {
        row.id: row.name
        for row in db.execute(select(Device.id, Device.name).where(Device.id.in_(device_ids)))
    }
    best: dict[int, tuple[float, int]] = {}
    frames = db.execute(
        select(Media.event_id, Media.id, func.coalesce(func.max(Detection.confidence), -1.0))
        .outerjoin(Detection, Detection.media_id == Media.id)
        .where(Media.event_id.in_(ids))
        .group_by(Media.id)
    )
    for event_id, media_id, confidence in frames:
        if event_id is None:  # the column is nullable, but the where clause keeps events' frames only
            continue
        current = best.get(event_id)
        if current is None or confidence > current[0]:
            best[event_id] = (confidence, media_id)
    reviews: dict[int, tuple[Review, str]] = {}
    for review, username in db.execute(
        select(Review, User.username)
        .join(User, User.id == Review.user_id)
        .where(Review.event_id.in_(ids))
        .order_by(Review.created_at, Review.id)
    ):
        reviews[review.event_id] = (review, username)
    rows = []
    for event in events:
        newest = reviews.get(event.id)
        frame = best.get(event.id)
        rows.append(
            FeedRow(
                event,
                names.get(event.device_id) or event.device_id,
                frame[1] if frame else None,
                newest[0] if newest else None,
                newest[1] if newest else None,
            )
        )
    return rows


# The distinct species by hopping through the species index (one lookup per species, not one per
# event): a "loose index scan", written as a recursive query that SQLite and PostgreSQL both run.
DISTINCT_SPECIES = text(
    "WITH RECURSIVE s(name) AS ("
    " SELECT MIN(species) FROM events WHERE species IS NOT NULL"
    " UNION ALL SELECT (SELECT MIN(species) FROM events WHERE species > s.name)"
    " FROM s WHERE s.name IS NOT NULL"
    ") SELECT name FROM s WHERE name IS NOT NULL"
)


def filter_choices(db: Session) -> dict[str, list[str]]:
    cameras = list(db.scalars(select(Device.id).order_by(Device.id)))
    species = set(db.scalars(DISTINCT_SPECIES))
    species |= set(db.scalars(select(Review.species).where(Review.species.is_not(None)).distinct()))
    return {"cameras": cameras, "species": sorted(species)}


def event_reviews(db: Session, event_id: int) -> list[tuple[Review, str]]:
    return [
        (review, username)
        for review, username in db.execute(
            select(Review, User.username)
            .join(User, User.id == Review.user_id)
            .where(Review.event_id == event_id)
            .order_by(Review.created_at.desc(), Review.id.desc())
        )
    ]
