"""Detections as the analysis counts them: one event is one detection (the pipeline already groups a
burst, and frames close in time on one camera, into one event), of the species a person gave in the
newest review when there is one, else of the machine's species. Events without a species (people,
vehicles, blanks) are not detections of wildlife.

Grouping happens in the database: a year of 100,000 events comes back as a few thousand rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import Session

from yaguar.server.dashboard.models import Review
from yaguar.storage.models import Event

from .filters import AnalysisFilter
from .sqltime import is_sqlite, local_day, local_minute

WIDEST_OFFSET = timedelta(hours=15)  # UTC offsets reach +14 h; a local day lies inside this margin


def _latest_reviews() -> Any:
    newest = select(func.max(Review.id)).group_by(Review.event_id)
    return (
        select(Review.event_id, Review.species, Review.count)
        .where(Review.id.in_(newest))
        .subquery("latest_review")
    )


def grouped(db: Session, flt: AnalysisFilter, *keys: str) -> list[tuple[Any, ...]]:
    """``(key values..., events, individuals)`` per group; keys among ``device``, ``species``, ``day``
    (local ``YYYY-MM-DD``) and ``minute`` (local minute of the day)."""
    review = _latest_reviews()
    reviewed = review.c.event_id.is_not(None)
    species = case((reviewed, review.c.species), else_=Event.species)
    count = case((reviewed, review.c.count), else_=Event.count)
    day = local_day(db, Event.started_at, Event.utc_offset_min)
    columns = {
        "device": Event.device_id,
        "species": species,
        "day": day,
        "minute": local_minute(db, Event.started_at, Event.utc_offset_min),
    }
    chosen = [columns[k].label(k) for k in keys]
    # A wide UTC window first (the index on started_at), then the exact local days.
    since = flt.start.isoformat()
    until = flt.end.isoformat()
    at_least_one = func.max(count, 1) if is_sqlite(db) else func.greatest(count, 1)
    stmt: Select[Any] = (
        select(*chosen, func.count().label("events"), func.sum(at_least_one).label("individuals"))
        .select_from(Event)
        .outerjoin(review, review.c.event_id == Event.id)
        .where(
            and_(
                Event.started_at >= _utc_floor(flt),
                Event.started_at < _utc_ceiling(flt),
                day >= since,
                day <= until,
                species.is_not(None),
            )
        )
        .group_by(*chosen)
    )
    if flt.camera:
        stmt = stmt.where(Event.device_id == flt.camera)
    if flt.species:
        stmt = stmt.where(func.lower(species) == flt.species.lower())
    return [tuple(row) for row in db.execute(stmt)]


def _utc_floor(flt: AnalysisFilter) -> datetime:
    return datetime.combine(flt.start, time(), UTC) - WIDEST_OFFSET


def _utc_ceiling(flt: AnalysisFilter) -> datetime:
    return datetime.combine(flt.end + timedelta(days=1), time(), UTC) + WIDEST_OFFSET
