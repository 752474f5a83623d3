"""Detections as the analysis counts them: one event is one detection (the pipeline already groups a
burst, and frames close in time on one camera, into one event), of the species a person gave in the
newest review when there is one, else of the machine's species. Events without a species (people,
vehicles, blanks) are not detections of wildlife.

Grouping happens in the database: a year of 100,000 events comes back as a few thousand rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Index, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from yaguar.server.dashboard.models import Review
from yaguar.storage.models import Event

from .filters import AnalysisFilter
from .sqltime import day_number, day_of, is_sqlite, local_minutes

WIDEST_OFFSET = timedelta(hours=15)  # UTC offsets reach +14 h; a local day lies inside this margin


# Counting per camera and species reads only this index, not the events table (migration e003).
ANALYSIS_INDEX = Index(
    "ix_events_device_species_started",
    Event.device_id,
    Event.species,
    Event.started_at,
    Event.utc_offset_min,
    Event.count,
)


def _latest_reviews() -> Any:
    newest = select(func.max(Review.id)).group_by(Review.event_id)
    return (
        select(Review.event_id, Review.species, Review.count)
        .where(Review.id.in_(newest))
        .subquery("latest_review")
    )


def grouped(db: Session, flt: AnalysisFilter, *keys: str) -> list[tuple[Any, ...]]:
    """``(key values..., events, individuals)`` per group; keys among ``device``, ``species``, ``day``
    (local day as a ``date``) and ``minute`` (local minute of the day)."""
    review = _latest_reviews()
    reviewed = review.c.event_id.is_not(None)
    species = case((reviewed, review.c.species), else_=Event.species)
    count = case((reviewed, review.c.count), else_=Event.count)
    clock = local_minutes(db, Event.started_at, Event.utc_offset_min)
    local_day = clock / 1440
    columns = {
        "device": Event.device_id,
        "species": species,
        "day": local_day,
        "minute": clock % 1440,
    }
    chosen = [columns[k].label(k) for k in keys]
    first, last = day_number(flt.start), day_number(flt.end)
    floor, ceiling = _utc_floor(flt), _utc_ceiling(flt)
    # Only events within 15 h of either end of the period can fall on the other side of it by their
    # camera's local day: the rest pass on the indexed UTC time alone (the OR stops there).
    inside = or_(
        and_(Event.started_at >= floor + 2 * WIDEST_OFFSET, Event.started_at < ceiling - 2 * WIDEST_OFFSET),
        and_(local_day >= first, local_day <= last),
    )
    at_least_one = func.max(count, 1) if is_sqlite(db) else func.greatest(count, 1)
    stmt: Select[Any] = (
        select(*chosen, func.count().label("events"), func.sum(at_least_one).label("individuals"))
        .select_from(Event)
        .outerjoin(review, review.c.event_id == Event.id)
        .where(Event.started_at >= floor, Event.started_at < ceiling, inside, species.is_not(None))
        .group_by(*chosen)
    )
    if flt.camera:
        stmt = stmt.where(Event.device_id == flt.camera)
    if flt.species:
        # The machine's species through its index, or a reviewer's; then the answer that counts.
        by_review = select(Review.event_id).where(Review.species == flt.species)
        stmt = stmt.where(or_(Event.species == flt.species, Event.id.in_(by_review)), species == flt.species)
    rows = []
    day_at = keys.index("day") if "day" in keys else None
    for row in db.execute(stmt):
        values = list(row)
        if day_at is not None:
            values[day_at] = day_of(int(values[day_at]))
        rows.append(tuple(values))
    return rows


def _utc_floor(flt: AnalysisFilter) -> datetime:
    return datetime.combine(flt.start, time(), UTC) - WIDEST_OFFSET


def _utc_ceiling(flt: AnalysisFilter) -> datetime:
    return datetime.combine(flt.end + timedelta(days=1), time(), UTC) + WIDEST_OFFSET
