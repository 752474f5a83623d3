"""Clip chunks from the field, put back together exactly once, and their frames into the pipeline.

Each chunk is written durably (``clips/parts/<device>/<clip_id>/``) before it is acknowledged, so the
agent may forget it. When the last chunk arrives the clip is joined in index order, checked against its
sha256, written under ``clips/`` by its sha256, and frames sampled from it become ``pending`` frames of
the clip's event, which the station's pipeline analyses like a burst (events, alerts). A frame's seq
comes from the clip's sha256 and its number, so a join repeated after a crash stores nothing twice;
a marker in ``clips/done/`` answers later copies of its chunks ``duplicate``.

A clip that stays incomplete (its agent lost a chunk for good) is dead-lettered with the reason
``clip_incomplete`` by ``expire_incomplete``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import cv2
from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from yaguar.durable import atomic_write
from yaguar.engine.video import VideoError, VideoReader
from yaguar.protocol.clip import ClipChunkMeta, ClipParts, join_chunks
from yaguar.protocol.errors import ProtocolError
from yaguar.storage.models import DeadLetter, Device, Media

from .ingest.media_store import MediaStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkOutcome:
    status: Literal["stored", "duplicate"]  # the Ack to send
    clip_path: str | None = None  # set when this chunk completed the clip
    media_ids: tuple[int, ...] = ()  # the clip's frames, pending for the pipeline


@dataclass(frozen=True)
class ClipSpec:
    """What the station needs to know of a video to make frames of it (from a clip's chunks, or a card)."""

    device: str
    clip_id: str
    clip_sha256: str
    event_id: str
    started_at: datetime
    trigger_at: datetime
    trigger: str

    @classmethod
    def of(cls, meta: ClipChunkMeta) -> ClipSpec:
        return cls(
            meta.device,
            meta.clip_id,
            meta.clip_sha256,
            meta.event_id,
            meta.started_at,
            meta.trigger_at,
            meta.trigger,
        )


def store_clip_file(media: MediaStore, sha256: str, data: bytes) -> str:
    """Write a video durably under the media root by its sha256; its path relative to the root."""
    relative = f"clips/{sha256[:2]}/{sha256}.mp4"
    target = media.root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        atomic_write(target, data)
    return relative


def mark_joined(media_root: Path, device_id: str, clip_id: str, relative: str, frames: int) -> None:
    """The clip is complete and its frames recorded: later chunks are duplicates, the page can play it."""
    marker = Path(media_root) / "clips" / "done" / device_id / f"{clip_id}.json"
    marker.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(marker, json.dumps({"path": relative, "frames": frames}).encode())


def frame_rows(
    media: MediaStore, video: Path, spec: ClipSpec, every_s: float, state: str = "pending"
) -> list[dict[str, Any]]:
    """Frames sampled every ``every_s`` from a video, written as JPEG, as rows of ``media`` (VideoError
    when the video cannot be read). Pre-trigger frames get negative burst indices, as in a burst."""
    with VideoReader(video, 50_000_000) as reader:
        sampled = list(reader.frames(every_s))
    pre_roll = (spec.trigger_at - spec.started_at).total_seconds()
    offset = spec.started_at.utcoffset() or timedelta(0)
    rows = []
    for number, frame in enumerate(sampled):
        ok, jpeg = cv2.imencode(".jpg", frame.pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            continue
        data = jpeg.tobytes()
        sha = hashlib.sha256(data).hexdigest()
        rows.append(
            {
                "device_id": spec.device,
                "seq": clip_frame_seq(spec.clip_sha256, number),
                "capture_id": clip_frame_id(spec.clip_id, frame.index),
                "agent_event_id": spec.event_id,
                "burst_index": max(-64, number - int(pre_roll / every_s)),
                "burst_size": len(sampled),
                "trigger": spec.trigger,
                "captured_at": spec.started_at + timedelta(seconds=frame.time_s),
                "utc_offset_min": int(offset.total_seconds() // 60),
                "sha256": sha,
                "size": len(data),
                "width": frame.pixels.shape[1],
                "height": frame.pixels.shape[0],
                "path": media.write(sha, data),
                "process_state": state,
            }
        )
    return rows


def joined_clip(media_root: Path, device_id: str, clip_id: str) -> str | None:
    """Where a joined clip is, relative to the media root; None when it is not (yet) joined."""
    marker = Path(media_root) / "clips" / "done" / device_id / f"{clip_id}.json"
    try:
        return str(json.loads(marker.read_text())["path"])
    except (OSError, ValueError, KeyError):
        return None


def clip_frame_id(clip_id: str, frame_index: int) -> str:
    """A sampled frame's capture id: the clip it came from, and its frame number in it."""
    return f"{clip_id[:52]}.f{frame_index}"


def clip_frame_seq(clip_sha256: str, number: int) -> int:
    """A sampled frame's seq: negative, from the clip's content, so a repeated join inserts nothing."""
    digest = hashlib.sha256(f"{clip_sha256}:{number}".encode()).hexdigest()
    return -(int(digest[:15], 16) + 1)


class ClipStore:
    def __init__(
        self, media: MediaStore, sessions: sessionmaker[Session], sample_every_s: float = 1.0
    ) -> None:
        self.media = media
        self.sessions = sessions
        self.sample_every_s = sample_every_s
        self.root = media.root / "clips"
        for sub in ("parts", "done"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def _parts_dir(self, meta: ClipChunkMeta) -> Path:
        return self.root / "parts" / meta.device / meta.clip_id

    def _done_marker(self, meta: ClipChunkMeta) -> Path:
        return self.root / "done" / meta.device / f"{meta.clip_id}.json"

    def _load(self, folder: Path) -> ClipParts | None:
        first = folder / "clip.json"
        if not first.exists():
            return None
        parts = ClipParts(ClipChunkMeta.model_validate_json(first.read_bytes()), {})
        for chunk in folder.glob("*.chunk"):
            index, sha = chunk.stem.split(".")
            parts.sha256s[int(index)] = sha
        return parts

    def receive(self, meta: ClipChunkMeta, payload: bytes) -> ChunkOutcome:
        """Store one validated chunk; ProtocolError (``clip_mismatch``, ``chunk_conflict``,
        ``clip_checksum_mismatch``) for a chunk to refuse."""
        if self._done_marker(meta).exists():
            return ChunkOutcome("duplicate")
        folder = self._parts_dir(meta)
        parts = self._load(folder)
        if parts is None:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / "clip.json", meta.to_json())
            parts = ClipParts(meta, {})
        chunk = folder / f"{meta.chunk_index:05d}.{meta.sha256}.chunk"
        if parts.add(meta) == "duplicate":
            status: Literal["stored", "duplicate"] = "duplicate"
        else:
            atomic_write(chunk, payload)
            status = "stored"
        if parts.missing:
            return ChunkOutcome(status)
        try:
            data = join_chunks(parts, lambda i: (folder / f"{i:05d}.{parts.sha256s[i]}.chunk").read_bytes())
        except ProtocolError:
            # The chunk that completed a clip that does not add up is refused and dropped, so the right
            # one (the agent resends until it gets an Ack) can still complete it.
            chunk.unlink(missing_ok=True)
            raise
        return self._complete(parts.first, data, status)

    def _complete(
        self, meta: ClipChunkMeta, data: bytes, status: Literal["stored", "duplicate"]
    ) -> ChunkOutcome:
        relative = store_clip_file(self.media, meta.clip_sha256, data)
        try:
            rows = frame_rows(self.media, self.media.root / relative, ClipSpec.of(meta), self.sample_every_s)
        except VideoError as exc:
            raise ProtocolError("clip_unreadable", f"clip {meta.clip_id}: {exc}") from None
        media_ids = self._insert(meta.device, rows)
        mark_joined(self.media.root, meta.device, meta.clip_id, relative, len(media_ids))
        shutil.rmtree(self._parts_dir(meta), ignore_errors=True)
        log.info(
            "clip %s of %s: %d bytes, %d frames to analyse", meta.clip_id, meta.device, len(data), len(rows)
        )
        return ChunkOutcome(status, relative, tuple(media_ids))

    def _insert(self, device_id: str, rows: list[dict[str, Any]]) -> list[int]:
        """The rows in one transaction, each at most once (a join repeated after a crash adds nothing)."""
        with self.sessions.begin() as session:
            if session.get(Device, device_id) is None:
                session.add(Device(id=device_id, registered=False))
                session.flush()
            session.execute(_insert_ignore(session), rows)
            seqs = [r["seq"] for r in rows]
            ids = session.scalars(
                select(Media.id).where(Media.device_id == device_id, Media.seq.in_(seqs)).order_by(Media.id)
            ).all()
        return list(ids)

    def expire_incomplete(self, max_age_s: float) -> int:
        """Dead-letter clips whose chunks stopped arriving ``max_age_s`` ago; returns how many."""
        cutoff = time.time() - max_age_s
        expired = 0
        for folder in sorted((self.root / "parts").glob("*/*")):
            parts = self._load(folder)
            newest = max((p.stat().st_mtime for p in folder.iterdir()), default=0.0)
            if parts is None or newest > cutoff:
                continue
            first = parts.first
            with self.sessions.begin() as session:
                session.add(
                    DeadLetter(
                        topic=f"yaguar/v1/{first.device}/clip",
                        device_id=first.device,
                        reason="clip_incomplete",
                        detail=f"clip {first.clip_id}: chunks {parts.missing[:20]} never arrived",
                        payload_size=sum(p.stat().st_size for p in folder.glob("*.chunk")),
                        payload_sha256=first.clip_sha256,
                        properties={"clip_id": first.clip_id, "chunk_count": first.chunk_count},
                    )
                )
            shutil.rmtree(folder, ignore_errors=True)
            log.warning("clip %s of %s dead-lettered: clip_incomplete", first.clip_id, first.device)
            expired += 1
        return expired


def _insert_ignore(session: Session) -> Insert:
    """INSERT ... ON CONFLICT (device_id, seq) DO NOTHING, on SQLite and PostgreSQL alike."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(Media).on_conflict_do_nothing(index_elements=["device_id", "seq"])
