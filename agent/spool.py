"""The crash-safe on-disk queue of frames waiting for the station's application ``Ack``.

One file per frame, ``pending/<seq>.frame``, written atomically (``spoolfile.py``): after a crash or a
power cut a frame is either whole or absent; temp files left by a crash are removed when the spool
opens, and a file that does not read back whole is quarantined.

Sequence numbers: per device, increasing, never reused, surviving reboots and SIGKILL. The spool leases
a block of numbers by writing the end of the block durably *before* handing out the first of them
(one disk write per ``seq_block`` frames); after a crash it resumes at the end of the last lease, so a
crash leaves a gap, never a repeat.

When full (``max_bytes``, or the disk itself says ENOSPC): ``drop_oldest`` evicts the oldest frames,
``refuse_new`` refuses the new one; either way it is counted in ``frames_evicted{policy}``.

Send order: the newest event's frame taken at the trigger (burst index 0) goes first, then everything
else oldest first (by seq). In normal operation that is plain seq order; after a long outage it puts a
fresh animal in front of hours of backlog. A frame leaves only on ``ack`` (the station stored it) or
``quarantine``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from yaguar.durable import TEMP_PREFIX, atomic_write, fsync_dir
from yaguar.protocol.clip import ClipChunkMeta
from yaguar.protocol.errors import ProtocolError
from yaguar.protocol.frame import build_meta

from .metrics import AgentMetrics
from .spoolfile import (
    DISK_FULL,
    SUFFIX,
    ItemMeta,
    SpooledFrame,
    SpoolError,
    encode_frame_file,
    read_frame_file,
    read_frame_meta,
    spool_summary,
)

log = logging.getLogger(__name__)

_LEASE = "seq.lease"

__all__ = [
    "Spool",
    "SpoolError",
    "SpooledFrame",
    "atomic_write",
    "encode_frame_file",
    "read_frame_file",
    "read_frame_meta",
    "spool_summary",
]


class Spool:
    def __init__(
        self,
        directory: Path | str,
        *,
        max_bytes: int = 512 * 1024 * 1024,
        policy: Literal["drop_oldest", "refuse_new"] = "drop_oldest",
        fsync: bool = True,
        seq_block: int = 64,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.pending_dir = self.directory / "pending"
        self.quarantine_dir = self.directory / "quarantine"
        self.max_bytes = max_bytes
        self.policy = policy
        self.fsync = fsync
        self.seq_block = seq_block
        self.metrics = metrics or AgentMetrics()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._frames: dict[int, SpooledFrame] = {}
        self._bytes = 0
        self._version = 0
        for folder in (self.directory, self.pending_dir, self.quarantine_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._load()

    # -- opening -------------------------------------------------------------------------------------

    def _load(self) -> None:
        highest = -1
        for folder in (self.pending_dir, self.quarantine_dir, self.directory):
            for tmp in folder.glob(f"{TEMP_PREFIX}*"):
                log.info("spool: removing %s, a partial write from a crash", tmp.name)
                tmp.unlink(missing_ok=True)
        for path in self.quarantine_dir.glob(f"*{SUFFIX}"):
            with contextlib.suppress(ValueError):
                highest = max(highest, int(path.stem))
        for path in sorted(self.pending_dir.glob(f"*{SUFFIX}")):
            try:
                meta = read_frame_meta(path)
            except (SpoolError, OSError) as exc:
                log.warning("spool: %s; moving it to quarantine", exc)
                self._move_to_quarantine(path, "unreadable_spool_file")
                continue
            self._frames[meta.seq] = SpooledFrame(meta, path)
            self._bytes += meta.size
            highest = max(highest, meta.seq)
        leased = self._read_lease()
        self._next_seq = max(leased, highest + 1)
        self._leased_until = self._next_seq  # the first allocation writes a fresh lease
        self._update_gauges()
        log.info(
            "spool: %d frames (%d bytes) waiting in %s; next seq %d",
            len(self._frames),
            self._bytes,
            self.pending_dir,
            self._next_seq,
        )

    def _read_lease(self) -> int:
        path = self.directory / _LEASE
        try:
            return int(path.read_text().strip())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            # Unreadable lease: fall back to the highest seq on disk (+1) and say so.
            log.warning("spool: seq lease %s unreadable (%s); resuming after the frames on disk", path, exc)
            return 0

    def _allocate_seq(self) -> int:
        if self._next_seq >= self._leased_until:
            until = self._next_seq + self.seq_block
            atomic_write(self.directory / _LEASE, f"{until}\n".encode(), fsync=True)
            self._leased_until = until
        seq = self._next_seq
        self._next_seq += 1
        return seq

    # -- writing -------------------------------------------------------------------------------------

    def put(self, payload: bytes, **fields: Any) -> SpooledFrame | None:
        """Spool a frame; ``fields`` are the ``FrameMeta`` fields other than seq, size and sha256.

        Returns None when the frame was refused because the spool is full (counted, logged).
        Raises ``ProtocolError`` when the fields break the contract (a bug in the caller).
        """
        return self._put(payload, lambda seq: build_meta(payload, seq=seq, **fields))

    def put_chunk(self, payload: bytes, **fields: Any) -> SpooledFrame | None:
        """Spool one chunk of a clip (``ClipChunkMeta`` fields other than seq); as ``put`` otherwise:
        the chunk gets the device's next seq and leaves only on its own ``Ack``."""
        return self._put(payload, lambda seq: ClipChunkMeta(seq=seq, **fields))

    def _put(self, payload: bytes, make_meta: Callable[[int], ItemMeta]) -> SpooledFrame | None:
        with self._lock:
            if len(payload) > self.max_bytes:
                self._refuse(len(payload), "the frame alone is larger than the spool's byte cap")
                return None
            if self._bytes + len(payload) > self.max_bytes:
                if self.policy == "refuse_new":
                    self._refuse(len(payload), "the spool is full")
                    return None
                self._evict_until(self.max_bytes - len(payload))
            seq: int | None = None
            while True:
                try:
                    if seq is None:
                        seq = self._allocate_seq()
                        try:
                            meta = make_meta(seq)
                        except ValueError as exc:
                            raise ProtocolError("bad_properties", f"frame metadata: {exc}") from None
                        path = self.pending_dir / f"{seq:020d}{SUFFIX}"
                        data = encode_frame_file(meta, payload)
                    atomic_write(path, data, fsync=self.fsync)
                    break
                except OSError as exc:
                    if exc.errno not in DISK_FULL:
                        raise
                    if self.policy == "refuse_new" or not self._frames:
                        self._refuse(len(payload), "the disk is full")
                        return None
                    log.warning("spool: disk full; evicting the oldest frame to make room")
                    self._evict_oldest()
            frame = SpooledFrame(meta, path)
            self._frames[seq] = frame
            self._bytes += meta.size
            self.metrics.frames_captured.inc()
            self._update_gauges()
            self._notify()
            return frame

    def _refuse(self, size: int, why: str) -> None:
        log.warning("spool: refused a %d-byte frame: %s (policy %s)", size, why, self.policy)
        self.metrics.frames_evicted.labels(policy="refuse_new").inc()

    def _evict_until(self, target_bytes: int) -> None:
        while self._frames and self._bytes > target_bytes:
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        seq = min(self._frames)
        frame = self._frames.pop(seq)
        self._bytes -= frame.size
        frame.path.unlink(missing_ok=True)
        self.metrics.frames_evicted.labels(policy="drop_oldest").inc()
        log.warning("spool: full; dropped the oldest frame, seq %d (%d bytes)", seq, frame.size)
        self._update_gauges()

    # -- leaving -------------------------------------------------------------------------------------

    def ack(self, seq: int) -> bool:
        """The station stored the frame: delete it and count it sent. False when it is no longer here."""
        with self._lock:
            if seq not in self._frames:
                return False
            # Counted before it leaves, so whoever sees the spool empty also sees the count.
            self.metrics.frames_sent.inc()
            frame = self._frames.pop(seq)
            self._bytes -= frame.size
            frame.path.unlink(missing_ok=True)
            if self.fsync:
                fsync_dir(self.pending_dir)
            self._update_gauges()
            self._notify()
            return True

    def quarantine(self, seq: int, reason: str) -> bool:
        """Set a frame aside for good (the station refused it, or it can never be sent)."""
        with self._lock:
            frame = self._frames.pop(seq, None)
            if frame is None:
                return False
            self._bytes -= frame.size
            self._move_to_quarantine(frame.path, reason)
            self.metrics.frames_quarantined.labels(reason=reason).inc()
            log.warning("spool: frame seq %d quarantined: %s", seq, reason)
            self._update_gauges()
            self._notify()
            return True

    def _move_to_quarantine(self, path: Path, reason: str) -> None:
        target = self.quarantine_dir / path.name
        try:
            os.replace(path, target)
            atomic_write(target.with_suffix(".reason"), f"{reason}\n".encode(), fsync=self.fsync)
        except OSError as exc:
            log.warning("spool: could not quarantine %s (%s); deleting it", path.name, exc)
            path.unlink(missing_ok=True)
        self._trim_quarantine()

    def _trim_quarantine(self) -> None:
        # Quarantine is for a person to look at, not a second queue: keep it under a tenth of the cap.
        files = sorted(self.quarantine_dir.glob(f"*{SUFFIX}"))
        sizes = {path: path.stat().st_size for path in files}
        total = sum(sizes.values())
        for path in files:
            if total <= self.max_bytes // 10:
                break
            total -= sizes[path]
            path.unlink(missing_ok=True)
            path.with_suffix(".reason").unlink(missing_ok=True)

    # -- reading -------------------------------------------------------------------------------------

    def pick(self, limit: int, exclude: set[int] | frozenset[int] = frozenset()) -> list[SpooledFrame]:
        """Up to ``limit`` frames to send next, skipping ``exclude`` (already in flight)."""
        with self._lock:
            return self._send_order(exclude)[:limit]

    def _send_order(self, exclude: set[int] | frozenset[int]) -> list[SpooledFrame]:
        if not self._frames:
            return []
        seqs = sorted(self._frames)
        newest_event = self._frames[seqs[-1]].meta.event_id
        # The frame taken at the trigger (burst index 0) of the newest event jumps the queue; once it
        # has gone, the rest of that event waits its turn like everything else.
        head = next(
            (
                self._frames[s]
                for s in reversed(seqs)
                if self._frames[s].meta.event_id == newest_event and self._frames[s].meta.burst_index == 0
            ),
            None,
        )
        order = [self._frames[s] for s in seqs]
        if head is not None:
            order = [head] + [frame for frame in order if frame.seq != head.seq]
        return [frame for frame in order if frame.seq not in exclude]

    def send_order(self) -> list[SpooledFrame]:
        with self._lock:
            return self._send_order(frozenset())

    def get(self, seq: int) -> SpooledFrame | None:
        with self._lock:
            return self._frames.get(seq)

    @property
    def version(self) -> int:
        """Increases with every change (and every ``wake``): pass it to ``wait`` as ``since``."""
        return self._version

    def wait(self, timeout: float, since: int | None = None) -> None:
        """Sleep until the spool changes or ``timeout`` passes; return at once when it already changed
        after ``since`` (so a change between a reader's look and its wait is never slept through)."""
        with self._changed:
            if since is not None and self._version != since:
                return
            self._changed.wait(timeout)

    def wake(self) -> None:
        with self._changed:
            self._notify()

    def _notify(self) -> None:
        self._version += 1
        self._changed.notify_all()

    @property
    def depth(self) -> int:
        return len(self._frames)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def quarantined(self) -> list[tuple[int, str]]:
        """(seq, reason) of the frames in quarantine."""
        result = []
        for path in sorted(self.quarantine_dir.glob(f"*{SUFFIX}")):
            reason_file = path.with_suffix(".reason")
            reason = reason_file.read_text().strip() if reason_file.exists() else "unknown"
            with contextlib.suppress(ValueError):
                result.append((int(path.stem), reason))
        return result

    def summary(self) -> dict[str, Any]:
        with self._lock:
            oldest = min(self._frames.values(), key=lambda f: f.seq, default=None)
            return {
                "directory": str(self.directory),
                "depth": self.depth,
                "bytes": self.bytes,
                "max_bytes": self.max_bytes,
                "policy": self.policy,
                "next_seq": self._next_seq,
                "oldest_captured_at": oldest.meta.captured_at.isoformat() if oldest else None,
                "quarantined": len(self.quarantined()),
            }

    def _update_gauges(self) -> None:
        self.metrics.spool_depth.set(len(self._frames))
        self.metrics.spool_bytes.set(self._bytes)
