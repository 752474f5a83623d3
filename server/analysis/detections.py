"""Detections as the analysis counts them: one event is one detection (the pipeline already groups a
burst, and frames close in time on one camera, into one event), of the species a person gave in the
newest review when there is one, else of the machine's species. Events without a species (people,
vehicles, blanks) are not detections of wildlife.

Grouping happens in the database: a year of 100,000 events comes back as a few thousand rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Index, and_, func, or_, select
from sqlalchemy.orm import Session

from yaguar.server.dashboard.models import Review
from yaguar.storage.models import Event

from .filters import AnalysisFilter
from .sqltime import day_number, day_of, is_sqlite, local_minutes

LONG_PERIOD_DAYS = 30
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
# Whether any event changed since a result was computed (``cache.data_stamp``; migration e004).
UPDATED_INDEX = Index("ix_events_updated", Event.updated_at)
# Counting one species (or grouping by species alone) reads only this one (migration e004).
SPECIES_INDEX = Index(
    "ix_events_species_cover",
    Event.species,
    Event.started_at,
    Event.device_id,
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
    (local day as a ``date``; ``day_number``, the same as days since 1970), ``minute`` (local minute of
    the day) and ``clock`` (local minutes since 1970, for both at once).

    The machine's answers are grouped from the index alone; the few reviewed events are then moved
    from the group of the machine's species to that of the reviewer's (probing the reviews for each of
    100,000 events would cost more than all the rest)."""
    clock = local_minutes(db, Event.started_at, Event.utc_offset_min)
    local_day = clock // 1440
    columns = {
        "device": Event.device_id,
        "species": Event.species,
        "day": local_day,
        "day_number": local_day,
        "minute": clock % 1440,
        "clock": clock,
    }
    chosen = [columns[k].label(k) for k in keys]
    first, last = day_number(flt.start), day_number(flt.end)
    floor, ceiling = _utc_floor(flt), _utc_ceiling(flt)
    # Only events within 15 h of either end of the period can fall on the other side of it by their
    # camera's local day: the rest pass on the indexed UTC time alone (the OR stops there).
    window = [
        Event.started_at >= floor,
        Event.started_at < ceiling,
        or_(
            and_(
                Event.started_at >= floor + 2 * WIDEST_OFFSET, Event.started_at < ceiling - 2 * WIDEST_OFFSET
            ),
            and_(local_day >= first, local_day <= last),
        ),
    ]
    if flt.camera:
        window.append(Event.device_id == flt.camera)
    at_least_one = func.max(Event.count, 1) if is_sqlite(db) else func.greatest(Event.count, 1)
    machine = (
        select(*chosen, func.count().label("events"), func.sum(at_least_one).label("individuals"))
        .where(*window, Event.species.is_not(None))
        .group_by(*chosen)
    )
    if flt.species:
        machine = machine.where(Event.species == flt.species)
    index = _index_for(flt, keys)
    if index is not None:
        machine = machine.with_hint(Event, f"INDEXED BY {index}", "sqlite")
    result: list[tuple[Any, ...]] = [tuple(row) for row in db.connection().execute(machine).all()]
    reviewed = _reviewed(db, keys, columns, window)
    if reviewed:
        groups = {tuple(row[: len(keys)]): [int(row[-2]), int(row[-1] or 0)] for row in result}
        _apply_reviews(flt, keys, reviewed, groups)
        result = [(*key, events, individuals) for key, (events, individuals) in groups.items() if events > 0]
    if "day" not in keys:
        return [tuple(row) for row in result]
    at = keys.index("day")
    return [(*row[:at], day_of(row[at]), *row[at + 1 :]) for row in result]


def _index_for(flt: AnalysisFilter, keys: tuple[str, ...]) -> str | None:
    """The covering index SQLite should read for a month or more. Its planner, without statistics
    (the station never runs ANALYZE), takes the start-time index for the time range and then fetches
    every row from the table, then sorts them to group: several times slower than reading a covering
    index in the order of the groups. For shorter periods the start-time range is the better plan."""
    if (flt.end - flt.start).days < LONG_PERIOD_DAYS:
        return None
    by_camera = not flt.species and (flt.camera or keys[:1] == ("device",))
    return str((ANALYSIS_INDEX if by_camera else SPECIES_INDEX).name)


def _reviewed(db: Session, keys: tuple[str, ...], columns: dict[str, Any], window: list[Any]) -> list[Any]:
    """The reviewed events in the window: their other keys, the machine's species and count, the
    reviewer's species and count."""
    review = _latest_reviews()
    others = [columns[k].label(k) for k in keys if k != "species"]
    stmt = (
        select(*others, Event.species, Event.count, review.c.species, review.c.count)
        .join(review, review.c.event_id == Event.id)
        .where(*window)
    )
    return list(db.connection().execute(stmt))


def _apply_reviews(
    flt: AnalysisFilter, keys: tuple[str, ...], reviewed: list[Any], groups: dict[tuple[Any, ...], list[int]]
) -> None:
    """Move each reviewed event from its machine group to its reviewed group."""
    at = keys.index("species") if "species" in keys else None
    width = len(keys) - (1 if at is not None else 0)
    for row in reviewed:
        rest = list(row[:width])
        machine_species, machine_count, human_species, human_count = row[width:]
        for species, count, sign in ((machine_species, machine_count, -1), (human_species, human_count, 1)):
            if species is None or (flt.species and species != flt.species):
                continue
            key = list(rest)
            if at is not None:
                key.insert(at, species)
            group = groups.setdefault(tuple(key), [0, 0])
            group[0] += sign
            group[1] += sign * max(count or 0, 1)


def _utc_floor(flt: AnalysisFilter) -> datetime:
    return datetime.combine(flt.start, time(), UTC) - WIDEST_OFFSET


def _utc_ceiling(flt: AnalysisFilter) -> datetime:
    return datetime.combine(flt.end + timedelta(days=1), time(), UTC) + WIDEST_OFFSET
