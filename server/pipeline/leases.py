"""Which worker analyses which frames: leases kept in the database, so several station processes on one
PostgreSQL share the pending frames without a coordinator of their own.

A worker claims a batch in one transaction: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks pending frames
nobody holds (or whose lease has run out: a killed worker's frames are taken over), and stamps them with
the worker's id and an expiry. Each stored batch renews the worker's other leases, so the expiry measures
time without progress, not the length of the worker's queue. The expiry is the database's clock, never the worker's, so a worker whose
clock is off neither steals live leases nor loses its own.

A camera is analysed by one worker at a time: a claim skips cameras with frames leased by another live
worker, so each camera's frames are grouped into events in capture order, as on one PC. Claims are
serialised by one transaction-scoped advisory lock (they take milliseconds per batch), and storing takes
a per-camera advisory lock, so even a worker that comes back after its lease ran out cannot group the same
camera at the same time as its successor. SQLite runs the same statements; there ``FOR UPDATE`` and the
advisory locks are not needed (``BEGIN IMMEDIATE`` already makes one writer at a time).
"""

from __future__ import annotations

import os
import socket
import uuid
import zlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, text, update
from sqlalchemy.orm import Session, aliased

from yaguar.storage.db import database_now
from yaguar.storage.models import Media

CLAIM_LOCK_KEY = 0x59_41_47_55  # "YAGU": the advisory lock every claim takes, so claims run one at a time
CAMERA_LOCK_SPACE = 0x5941  # the first key of the two-key per-camera advisory lock


@dataclass(frozen=True)
class ClaimedFrame:
    media_id: int
    device_id: str
    burst_id: str
    path: str


def new_worker_id() -> str:
    """Unique per process and start: a restarted worker never mistakes its predecessor's leases for its own."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def claim_frames(session: Session, worker: str, limit: int, lease_s: float) -> list[ClaimedFrame]:
    """Lease up to ``limit`` pending frames to ``worker`` (the caller owns the transaction)."""
    if _is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK_KEY})
    now = database_now(session)
    other = aliased(Media)  # its own name: otherwise SQLAlchemy correlates it with the outer query's row
    busy_cameras = select(other.device_id).where(
        other.process_state == "pending", other.lease_until >= now, other.lease_owner != worker
    )
    rows = session.execute(
        select(Media.id, Media.device_id, Media.agent_event_id, Media.path)
        .where(
            Media.process_state == "pending",
            or_(Media.lease_until.is_(None), Media.lease_until < now),
            Media.device_id.not_in(busy_cameras),
        )
        .order_by(Media.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Media)
    ).all()
    if rows:
        session.execute(
            update(Media)
            .where(Media.id.in_([row.id for row in rows]))
            .values(lease_owner=worker, lease_until=now + timedelta(seconds=lease_s))
        )
    return [ClaimedFrame(row.id, row.device_id, row.agent_event_id, row.path) for row in rows]


def lock_cameras(session: Session, device_ids: set[str]) -> None:
    """Hold each camera's grouping lock until the transaction ends (sorted: no two workers deadlock)."""
    if not _is_postgres(session):
        return
    for device_id in sorted(device_ids):
        key = zlib.crc32(device_id.encode()) - 2**31  # a stable int4, the same in every process
        session.execute(
            text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": CAMERA_LOCK_SPACE, "key": key}
        )


def held_frames(session: Session, worker: str | None, media_ids: list[int]) -> dict[int, Media]:
    """The frames still pending and leased to ``worker``, locked for this transaction. A frame missing
    from the answer was taken over (the lease ran out) or already stored: its results must be dropped.
    ``worker=None``: a caller that owns its frames otherwise (an SD-card import's own state) gets them all."""
    query = select(Media).where(Media.id.in_(media_ids))
    if worker is not None:
        query = query.where(Media.process_state == "pending", Media.lease_owner == worker)
    return {media.id: media for media in session.scalars(query.with_for_update(of=Media))}


def renew_leases(session: Session, worker: str, lease_s: float) -> None:
    """Push back the expiry of every frame ``worker`` still holds. Called with each stored batch, so a
    worker that makes progress keeps its claims however long its queue is, while a killed or hung one
    loses them ``lease_s`` after its last batch."""
    until = database_now(session) + timedelta(seconds=lease_s)
    session.execute(
        update(Media)
        .where(Media.lease_owner == worker, Media.process_state == "pending")
        .values(lease_until=until)
    )


def release_frames(session: Session, worker: str) -> int:
    """Give back the frames ``worker`` holds but has not stored (a clean stop): the next start, or
    another worker, takes them at once instead of waiting for the leases to run out."""
    result = session.execute(
        update(Media)
        .where(Media.lease_owner == worker, Media.process_state == "pending")
        .values(lease_owner=None, lease_until=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)
