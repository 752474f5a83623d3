"""What one received message becomes in the database: a frame, a heartbeat, a status, or a dead letter.

``check`` validates a message without touching the database (CPU only, outside the transaction);
``record`` writes a checked batch inside one transaction. Idempotency on (device_id, seq) is enforced
by the database's unique constraint, so two station workers can never store a frame twice.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Insert, Row, Table, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from yaguar.protocol import (
    FrameLimits,
    Heartbeat,
    Kind,
    ProtocolError,
    Status,
    ValidFrame,
    parse_json_message,
    topics,
    validate_frame,
)
from yaguar.protocol.frame import user_properties
from yaguar.storage.base import Base
from yaguar.storage.models import DeadLetter, Device, Media
from yaguar.storage.models import Heartbeat as HeartbeatRow

from .mqtt_link import Received

log = logging.getLogger(__name__)

Outcome = Literal["stored", "duplicate", "rejected", "recorded"]
# Rows per multi-row INSERT: well under SQLite's and PostgreSQL's limits on bound parameters.
_ROWS_PER_INSERT = 500


@dataclass
class Checked:
    item: Received
    kind: Kind | None
    device_id: str | None
    frame: ValidFrame | None = None
    message: Heartbeat | Status | None = None
    error: ProtocolError | None = None
    path: str | None = None  # where the frame's bytes were written, relative to the media root
    outcome: Outcome = "recorded"
    media_id: int | None = None
    invalid: ProtocolError | None = None  # the verdict of ``check``, kept when a commit is retried

    def reject(self, error: ProtocolError) -> None:
        self.error, self.outcome = error, "rejected"

    def reset(self) -> None:
        """Forget what a failed transaction decided; keep what ``check`` found and the written file."""
        self.error, self.media_id = self.invalid, None
        self.outcome = "rejected" if self.invalid else "recorded"

    def valid_frame(self) -> ValidFrame:
        """The validated frame; only checked frames that passed ``check`` reach the frame stages."""
        if self.frame is None:
            raise ValueError(f"{self.item.topic[:120]} holds no valid frame")
        return self.frame

    def seq(self) -> int | None:
        """The frame's seq, also for a refused frame whose properties still name one (for its Ack)."""
        if self.frame is not None:
            return self.frame.meta.seq
        try:
            value = int(user_properties(self.item.properties).get("seq", ""))
        except (ValueError, ProtocolError):
            return None
        return value if value >= 0 else None


def check(item: Received, limits: FrameLimits) -> Checked:
    """Validate a message against the wire contract; never raises."""
    try:
        device_id, kind = topics.parse(item.topic)
    except ProtocolError as exc:
        checked = Checked(item, kind=None, device_id=None, invalid=exc)
        checked.reject(exc)
        return checked
    checked = Checked(item, kind=kind, device_id=device_id)
    try:
        if kind is Kind.FRAME:
            checked.frame = validate_frame(item.topic, item.payload, item.properties, limits)
        elif kind is Kind.HEARTBEAT:
            checked.message = parse_json_message(Heartbeat, item.topic, item.payload)
        elif kind is Kind.STATUS:
            checked.message = parse_json_message(Status, item.topic, item.payload)
        else:
            raise ProtocolError("bad_topic", f"the station does not take {kind.value} messages")
    except ProtocolError as exc:
        checked.reject(exc)
        checked.invalid = exc
    return checked


def record(session: Session, batch: list[Checked], accept_unknown_devices: bool) -> None:
    """Write a checked batch; sets each item's ``outcome`` (and ``media_id`` for stored frames).

    Devices are read and updated with a few table-level statements per batch, not as ORM objects: loading
    and flushing Device objects was over half of the commit stage's CPU in a profile, and the commit
    stage holds up the acks."""
    now = datetime.now(UTC)
    devices = _devices(session, {c.device_id for c in batch if c.device_id and c.outcome != "rejected"}, now)
    devices_table = _table_of(Device)
    seen: set[str] = set()
    frames: list[Checked] = []
    for checked in batch:
        if checked.outcome != "rejected":
            assert checked.device_id is not None  # check() rejects a message whose topic names no device
            device = devices[checked.device_id]
            if device.revoked:
                checked.reject(ProtocolError("revoked_device", f"device {device.id} has been revoked"))
            elif not device.registered and not accept_unknown_devices:
                checked.reject(
                    ProtocolError("unknown_device", f"device {device.id} is not registered on this station")
                )
            else:
                seen.add(device.id)
        if checked.outcome == "rejected":
            session.add(_dead_letter(checked, now))
        elif checked.frame is not None:
            frames.append(checked)
        elif isinstance(checked.message, Heartbeat):
            beat = checked.message.model_dump(mode="json")
            session.add(
                HeartbeatRow(
                    device_id=checked.device_id,
                    sent_at=checked.message.sent_at,
                    received_at=now,
                    payload=beat,
                )
            )
            session.execute(
                update(devices_table)
                .where(devices_table.c.id == checked.device_id)
                .values(last_heartbeat=beat)
            )
        elif isinstance(checked.message, Status):
            session.execute(
                update(devices_table)
                .where(devices_table.c.id == checked.device_id)
                .values(
                    status=checked.message.state,
                    status_at=checked.message.at or now,
                    status_detail=checked.message.model_dump(mode="json", exclude_none=True),
                )
            )
    if seen:
        session.execute(update(devices_table).where(devices_table.c.id.in_(seen)).values(last_seen=now))
    for start in range(0, len(frames), _ROWS_PER_INSERT):
        _record_frames(session, frames[start : start + _ROWS_PER_INSERT], now)


def _devices(session: Session, ids: set[str | None], now: datetime) -> dict[str, Row[Any, Any, Any]]:
    """Each device's id, registered and revoked, adding the ones seen for the first time."""
    ids_present = {i for i in ids if i}
    if not ids_present:
        return {}
    table = _table_of(Device)
    rows = [{"id": device_id, "first_seen": now, "registered": False} for device_id in sorted(ids_present)]
    session.execute(_insert_ignore(session, table), rows)
    found = session.execute(
        select(table.c.id, table.c.registered, table.c.revoked).where(table.c.id.in_(ids_present))
    )
    return {row.id: row for row in found}


def _media_row(checked: Checked, now: datetime) -> dict[str, Any]:
    frame = checked.valid_frame()
    meta = frame.meta
    offset = meta.captured_at.utcoffset()
    return {
        "device_id": meta.device,
        "seq": meta.seq,
        "capture_id": meta.capture_id,
        "agent_event_id": meta.event_id,
        "burst_index": meta.burst_index,
        "burst_size": meta.burst_size,
        "trigger": meta.trigger,
        "captured_at": meta.captured_at,
        "utc_offset_min": int(offset.total_seconds() // 60) if offset is not None else 0,
        "received_at": now,
        "sha256": meta.sha256,
        "size": meta.size,
        "width": frame.jpeg.width,
        "height": frame.jpeg.height,
        "path": checked.path,
        "process_state": "pending",
    }


def _record_frames(session: Session, frames: list[Checked], now: datetime) -> None:
    """Insert the batch's frames in one statement (per-row ORM statements cost ~3 ms each, which capped
    ingest), then sort out which were new, which were duplicates and which reused a seq."""
    if not frames:
        return
    table = _table_of(Media)
    stmt = _insert_ignore(session, table, conflict=("device_id", "seq")).returning(
        table.c.id, table.c.device_id, table.c.seq, table.c.sha256
    )
    # executemany with RETURNING: SQLAlchemy's "insertmanyvalues" sends multi-row INSERTs from one
    # cached statement, instead of compiling a new statement for every batch size.
    rows = session.execute(stmt, [_media_row(c, now) for c in frames])
    inserted = {(row.device_id, row.seq): (row.id, row.sha256) for row in rows}
    earlier = {(c.valid_frame().meta.device, c.valid_frame().meta.seq) for c in frames} - inserted.keys()
    stored_before = (
        {
            (row.device_id, row.seq): row.sha256
            for row in session.execute(
                select(table.c.device_id, table.c.seq, table.c.sha256).where(
                    tuple_(table.c.device_id, table.c.seq).in_(sorted(earlier))
                )
            )
        }
        if earlier
        else {}
    )
    claimed: set[tuple[str, int]] = set()
    for checked in frames:
        meta = checked.valid_frame().meta
        key = (meta.device, meta.seq)
        if key in inserted and key not in claimed and inserted[key][1] == meta.sha256:
            claimed.add(key)  # the first copy in the batch is the one stored
            checked.outcome, checked.media_id = "stored", inserted[key][0]
            continue
        stored_sha = inserted[key][1] if key in inserted else stored_before.get(key)
        if stored_sha == meta.sha256:
            checked.outcome = "duplicate"
        else:
            checked.reject(
                ProtocolError(
                    "seq_conflict", f"seq {meta.seq} of {meta.device} was already stored with other bytes"
                )
            )
            session.add(_dead_letter(checked, now))


def _table_of(model: type[Base]) -> Table:
    """A mapped class's table: SQLAlchemy types ``__table__`` as any FromClause, ours are Tables."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _insert_ignore(session: Session, model: type | Table, conflict: tuple[str, ...] | None = None) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(model).on_conflict_do_nothing(index_elements=list(conflict) if conflict else None)


def _dead_letter(checked: Checked, now: datetime) -> DeadLetter:
    item, error = checked.item, checked.error
    if checked.frame is not None:  # a checked frame's bytes may already be on disk and freed
        size, sha256 = checked.frame.meta.size, checked.frame.meta.sha256
    else:
        size, sha256 = len(item.payload), hashlib.sha256(item.payload).hexdigest()
    try:
        props = user_properties(item.properties)
    except ProtocolError:
        props = {"error": "repeated user properties"}
    return DeadLetter(
        received_at=now,
        topic=item.topic[:300],
        device_id=(checked.device_id or None),
        reason=error.reason if error else "unknown",
        detail=str(error)[:500] if error else "",
        payload_size=size,
        payload_sha256=sha256,
        properties={k[:64]: v[:200] for k, v in list(props.items())[:32]} or None,
    )
