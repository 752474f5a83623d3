"""Writing a batch of analysed frames: detections, the frames' progress, and their events, in one
transaction; alert hooks run inside it, so an alert commits with the event it is about."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from yaguar.engine.analyser import FrameResult
from yaguar.engine.events import BoxVote, belongs, summarise
from yaguar.storage.db import database_now
from yaguar.storage.models import Detection as DetectionRow
from yaguar.storage.models import Event, Media

from .leases import held_frames, lock_cameras

log = logging.getLogger(__name__)

EventHook = Callable[[Session, Event], None]


@dataclass
class Stored:
    events: list[int]  # events created or changed
    lost: list[int]  # frames whose lease another worker took over: their results were dropped


def store_results(
    session: Session,
    results: list[FrameResult],
    model_ident: str,
    gap_s: float,
    event_hooks: list[EventHook],
    worker: str | None = None,
) -> Stored:
    """Store one batch analysed by ``worker`` (the caller owns the transaction). Only frames still leased
    to it are stored, so a frame is stored once even when a slow worker's lease was taken over; without a
    worker (an import that holds its frames in a state of its own), every frame of the batch is stored."""
    gap = timedelta(seconds=gap_s)
    touched: dict[int, Event] = {}
    now = database_now(session)  # never the worker's own clock: other workers close events by it
    keys = [cast(int, r.key) for r in results]  # the station keys frames by media id
    lock_cameras(session, set(session.scalars(select(Media.device_id).where(Media.id.in_(keys)))))
    media_by_id = held_frames(session, worker, keys)
    lost = [key for key in keys if key not in media_by_id]
    open_events = _OpenEvents(session, gap, now)
    for result in results:
        media = media_by_id.get(cast(int, result.key))
        if media is None:
            continue
        media.process_state = result.state
        media.lease_owner, media.lease_until = None, None
        media.process_note = (result.note or None) and result.note[:200]
        media.processed_at = now
        media.motion_score = result.motion.score if result.motion else None
        for det in result.detections:
            x, y, w, h = det.bbox
            session.add(
                DetectionRow(
                    media_id=media.id,
                    model=model_ident,
                    category=det.category,
                    label=det.label[:120],
                    confidence=det.confidence,
                    x=x,
                    y=y,
                    w=w,
                    h=h,
                    species=det.species,
                    species_confidence=det.species_confidence,
                    classifier=det.classifier,
                )
            )
        if result.state == "failed":
            continue
        event = open_events.join(media)
        media.event_id = event.id
        touched[event.id] = event
    session.flush()
    # Close first, so a hook sees each event once, in its final state for this batch.
    for event in _close_stale(session, list(media_by_id.values()), gap):
        touched.setdefault(event.id, event)
    for event in touched.values():
        _resummarise(session, event, model_ident, now)
        for hook in event_hooks:
            hook(session, event)
    return Stored(sorted(touched), lost)


class _OpenEvents:
    """The open events of each camera seen in a batch, loaded once per camera and batch."""

    def __init__(self, session: Session, gap: timedelta, now: datetime) -> None:
        self.session, self.gap, self.now = session, gap, now
        self.by_device: dict[str, list[tuple[Event, set[str]]]] = {}

    def _load(self, device_id: str) -> list[tuple[Event, set[str]]]:
        if device_id not in self.by_device:
            events = self.session.scalars(
                select(Event)
                .where(Event.device_id == device_id, Event.closed.is_(False))
                .order_by(Event.ended_at.desc())
                .limit(3)
                .with_for_update(of=Event)  # close_idle on another worker skips them until we commit
            ).all()
            self.by_device[device_id] = [
                (e, set(self.session.scalars(select(Media.agent_event_id).where(Media.event_id == e.id))))
                for e in events
            ]
        return self.by_device[device_id]

    def join(self, media: Media) -> Event:
        """The open event on this camera the frame joins, or a new one."""
        candidates = self._load(media.device_id)
        for event, bursts in candidates:
            if belongs(
                event.started_at, event.ended_at, bursts, media.captured_at, media.agent_event_id, self.gap
            ):
                event.started_at = min(event.started_at, media.captured_at)
                event.ended_at = max(event.ended_at, media.captured_at)
                bursts.add(media.agent_event_id)
                return event
        event = Event(
            device_id=media.device_id,
            started_at=media.captured_at,
            ended_at=media.captured_at,
            utc_offset_min=media.utc_offset_min,
            frame_count=0,
            category="blank",
            count=0,
            confidence=0.0,
            closed=False,
            updated_at=self.now,
        )
        self.session.add(event)
        self.session.flush()
        candidates.insert(0, (event, {media.agent_event_id}))
        return event


def _resummarise(session: Session, event: Event, model_ident: str, now: datetime) -> None:
    frames = session.scalars(select(Media).where(Media.event_id == event.id)).all()
    votes: dict[int, list[BoxVote]] = {m.id: [] for m in frames}
    classifiers: set[str] = set()
    rows = session.scalars(
        select(DetectionRow).join(Media, DetectionRow.media_id == Media.id).where(Media.event_id == event.id)
    ).all()
    for row in rows:
        votes.setdefault(row.media_id, []).append(
            BoxVote(row.category, row.confidence, row.species, row.species_confidence)
        )
        if row.classifier and row.species:
            classifiers.add(row.classifier)
    summary = summarise(list(votes.values()))
    event.frame_count = summary.frames
    event.category = summary.category
    event.species = summary.species
    event.count = summary.count
    event.confidence = summary.confidence
    event.model = ", ".join([model_ident, *sorted(classifiers)])[:120]
    _touch(event, now)


def _touch(event: Event, now: datetime) -> None:
    """Stamp the event with the database's time. Flagged as changed even when the value is the same, or
    the model's ``onupdate`` would stamp it with this worker's clock, which may be off."""
    event.updated_at = now
    flag_modified(event, "updated_at")


def _close_stale(session: Session, frames: list[Media], gap: timedelta) -> list[Event]:
    """Close open events that the newest frame of their camera has left behind by more than the gap."""
    newest: dict[str, datetime] = {}
    for media in frames:
        if media.device_id not in newest or media.captured_at > newest[media.device_id]:
            newest[media.device_id] = media.captured_at
    closed: list[Event] = []
    for device_id, captured_at in newest.items():
        for event in session.scalars(
            select(Event).where(
                Event.device_id == device_id, Event.closed.is_(False), Event.ended_at < captured_at - gap
            )
        ):
            event.closed = True
            closed.append(event)
    return closed


def close_idle(session: Session, gap_s: float, event_hooks: list[EventHook]) -> list[int]:
    """Close open events that no frame has changed for longer than the gap (station time: a camera that
    went quiet). Returns the ids closed; the hooks see each closed event inside this transaction."""
    now = database_now(session)  # the database's clock: a worker whose clock is ahead closes nothing early
    cutoff = now - timedelta(seconds=gap_s)
    closed = []
    idle = (
        select(Event)
        .where(Event.closed.is_(False), Event.updated_at < cutoff)
        .with_for_update(skip_locked=True, of=Event)  # another worker is closing or growing it now
    )
    for event in session.scalars(idle):
        if _frames_still_to_join(session, event, timedelta(seconds=gap_s)):
            continue
        event.closed = True
        _touch(event, now)
        for hook in event_hooks:
            hook(session, event)
        closed.append(event.id)
    return closed


def _frames_still_to_join(session: Session, event: Event, gap: timedelta) -> bool:
    """Does the event's camera have frames not yet analysed that would join it? Then it is not quiet, only
    behind: a backlog, or frames of a killed worker waiting for their lease to run out. Closing it now
    would split the burst in two events."""
    pending = select(Media.id).where(
        Media.device_id == event.device_id,
        Media.process_state == "pending",
        or_(
            Media.captured_at.between(event.started_at - gap, event.ended_at + gap),
            Media.agent_event_id.in_(select(Media.agent_event_id).where(Media.event_id == event.id)),
        ),
    )
    return session.scalar(pending.limit(1)) is not None
