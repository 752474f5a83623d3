"""The one writer: takes received messages in batches, stores them, and only then acknowledges them.

Two stages, so the disk and the CPU work side by side: the first checks each message and writes its
frame's file (a pool of threads, one message per task: hashing, writing and fsyncing overlap across the
batch), the second commits batches to the database in arrival order and acknowledges them. While one
batch commits, the next one's files are written. Committing several ready batches in one transaction
(each an fsync with synchronous=FULL) is what lets a 2-core station keep up with a network of cameras.

A batch whose files cannot be written (disk full) or that cannot be committed (database locked) is
retried and never acknowledged before it commits: if the station dies meanwhile, the broker delivers it
again.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from yaguar.protocol import Ack, FrameLimits, Kind, topics

from ..config import IngestConfig
from .media_store import MediaStore
from .metrics import IngestMetrics
from .mqtt_link import Received, StationMqtt
from .recorder import Checked, check, record

log = logging.getLogger(__name__)


class IngestWriter:
    def __init__(
        self,
        config: IngestConfig,
        inbox: queue.Queue[Received],
        link: StationMqtt,
        session_factory: sessionmaker[Session],
        media: MediaStore,
        metrics: IngestMetrics,
        on_stored: Callable[[list[int]], None],
    ) -> None:
        self.config = config
        self.inbox = inbox
        self.link = link
        self.session_factory = session_factory
        self.media = media
        self.metrics = metrics
        self.on_stored = on_stored
        self.limits = FrameLimits(
            max_payload_bytes=config.max_payload_bytes,
            max_pixels=config.max_pixels,
            max_clock_skew=timedelta(seconds=config.max_clock_skew_s),
        )
        # sha256, file writes and fsyncs release the GIL: a few threads overlap them across a batch.
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ingest-io")
        # Written batches waiting for their commit; small, so a stuck database stops the intake.
        self._written: queue.Queue[list[Checked]] = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True),
            threading.Thread(target=self._commit_loop, name="ingest-commit", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- stage 1: check and write files
    def _write_loop(self) -> None:
        while not self._stop.is_set():
            batch = self._take_batch()
            if batch and (checked := self._check_and_write(batch)) is not None:
                self._hand_over(checked)

    def _hand_over(self, checked: list[Checked]) -> None:
        while not self._stop.is_set():
            try:
                self._written.put(checked, timeout=0.2)
                return
            except queue.Full:
                continue  # the commit stage is behind (or retrying); wait for it

    def _take_batch(self) -> list[Received]:
        try:
            first = self.inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.config.batch_wait_ms / 1000
        while len(batch) < self.config.batch_max:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self.inbox.get(timeout=remaining) if remaining > 0 else self.inbox.get_nowait())
            except queue.Empty:
                break
        self.metrics.queue_depth.set(self.inbox.qsize())
        return batch

    def _check_and_write(self, batch: list[Received]) -> list[Checked] | None:
        """The batch checked, with every valid frame's file durable; None if stopped before that."""
        checked = list(self._pool.map(self._check_one, batch))
        while True:
            todo = [c for c in checked if _needs_file(c) and c.path is None]
            try:
                for c, path in zip(todo, self._pool.map(self._write_frame, todo), strict=True):
                    c.path = path
                return checked
            except OSError as exc:
                self._retry_later(_io_reason(exc), exc, checked)
            if self._stop.wait(self.config.retry_delay_s):
                return None

    def _check_one(self, item: Received) -> Checked:
        checked = check(item, self.limits)
        if _needs_file(checked):
            # On failure it is written again, and the failure reported, by _check_and_write.
            with contextlib.suppress(OSError):
                checked.path = self._write_frame(checked)
        return checked

    def _write_frame(self, checked: Checked) -> str:
        path = self.media.write(checked.valid_frame().meta.sha256, checked.item.payload)
        # The frame is on disk: free its memory now, not when the broker acks it, which comes after the
        # agent's answer and can be a hundred frames later. Held, they cost hundreds of MB of fresh pages.
        checked.item.payload = b""
        return path

    # --- stage 2: commit and acknowledge, in arrival order
    def _commit_loop(self) -> None:
        while True:
            try:
                batch = self._written.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            while len(batch) < self.config.batch_max:  # batches already written: one transaction
                try:
                    batch += self._written.get_nowait()
                except queue.Empty:
                    break
            if not self._commit_until_done(batch):
                return
            self._acknowledge(batch)
            stored = [c.media_id for c in batch if c.outcome == "stored" and c.media_id is not None]
            if stored:
                self.on_stored(stored)

    def _commit_until_done(self, checked: list[Checked]) -> bool:
        while not self._commit(checked):
            if self._stop.wait(self.config.retry_delay_s):
                log.warning(
                    "stopping with %d messages not committed; the broker will deliver them again",
                    len(checked),
                )
                return False
        return True

    def _commit(self, checked: list[Checked]) -> bool:
        try:
            with self.session_factory.begin() as session:
                record(session, checked, self.config.accept_unknown_devices)
        except OSError as exc:
            self._retry_later(_io_reason(exc), exc, checked)
            return False
        except OperationalError as exc:
            reason = "database_locked" if "locked" in str(exc).lower() else "database_error"
            self._retry_later(reason, exc, checked)
            return False
        return True

    def _retry_later(self, reason: str, exc: Exception, checked: list[Checked]) -> None:
        for c in checked:  # a retry starts from the messages' own verdicts, not this attempt's
            c.reset()
        self.metrics.commit_failures.labels(reason).inc()
        log.error(
            "could not store %d messages (%s: %s); they stay unacknowledged and are retried",
            len(checked),
            reason,
            str(exc).splitlines()[0][:160],
        )

    def _acknowledge(self, checked: list[Checked]) -> None:
        now = time.monotonic()
        self.metrics.batch_size.observe(len(checked))
        for c in checked:
            self._answer_agent(c)
            self.metrics.latency.observe(now - c.item.arrived)
            if c.kind is Kind.FRAME:
                self.metrics.frames_received.inc()
            if c.outcome == "rejected":
                assert c.error is not None  # reject() always gives the reason
                kind = c.kind.value if c.kind else "unknown"
                self.metrics.rejected.labels(kind, c.error.reason).inc()
                log.warning("refused %s on %s: %s (%s)", kind, c.item.topic[:120], c.error, c.error.reason)
            elif c.outcome == "stored":
                self.metrics.frames_stored.inc()
                self.metrics.bytes_stored.inc(c.valid_frame().meta.size)
            elif c.outcome == "duplicate":
                self.metrics.frames_duplicate.inc()
            elif c.kind is Kind.HEARTBEAT:
                self.metrics.heartbeats.inc()

    def _answer_agent(self, c: Checked) -> None:
        """Send a frame's Ack to its agent, then release the message at the broker. If the station dies
        in between, the broker delivers the frame again and the agent gets a second ("duplicate") Ack,
        never none."""
        device_id = c.device_id
        seq = c.seq() if c.kind is Kind.FRAME and device_id else None
        if seq is None or device_id is None:
            self.link.ack(c.item)
            return
        # A frame is always stored, a duplicate or rejected by now; "recorded" is for other messages.
        assert c.outcome != "recorded"
        ack = Ack(seq=seq, status=c.outcome, reason=c.error.reason if c.error else None)
        self.link.answer_then_ack(topics.topic(device_id, Kind.ACK), ack.to_json(), c.item)


def _needs_file(checked: Checked) -> bool:
    """A valid frame, so far: its bytes go to the media store before the commit."""
    return checked.frame is not None and checked.outcome != "rejected"


def _io_reason(exc: OSError) -> str:
    return "disk_full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "io_error"
