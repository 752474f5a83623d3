"""The station's pipeline component: pending frames -> decode -> motion -> detect -> classify -> store.

The database is the durable queue: a stored frame is ``pending`` until its results commit, so frames
left pending by a crash or a restart are simply found again. Frames are claimed with leases in the
database (``leases``), so several workers on one PostgreSQL share them. In memory, a loader thread claims
pending frames and decodes them in a thread pool into a bounded queue (it blocks when the queue is full:
backpressure on the loader, never lost frames); the inference thread takes batches across cameras from
that queue, analyses them and stores each batch in one transaction.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from yaguar.engine.analyser import Analyser, FrameInput, FrameResult
from yaguar.engine.decode import DecodeError
from yaguar.storage.models import Media

from .leases import claim_frames, new_worker_id, release_frames, renew_leases
from .store import close_idle, store_results
from .switch import ClassifierSwitch

if TYPE_CHECKING:
    from aiohttp import web

    from ..context import StationContext

log = logging.getLogger(__name__)

STALL_S = (
    600.0  # no loop turn and no batch stored for this long: the pipeline is stuck (the watchdog says so)
)
STORE_ATTEMPTS = 4  # a busy database gets 0.5 + 1 + 2 + 4 s before the batch is given up (left pending)


class PipelineMetrics:
    _by_registry: ClassVar[weakref.WeakKeyDictionary[CollectorRegistry, PipelineMetrics]] = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def of(cls, registry: CollectorRegistry) -> PipelineMetrics:
        """One set per registry: a component restarted on the same station keeps counting."""
        if registry not in cls._by_registry:
            cls._by_registry[registry] = cls(registry)
        return cls._by_registry[registry]

    def __init__(self, registry: CollectorRegistry) -> None:
        self.frames = Counter(
            "yaguar_pipeline_frames", "frames analysed, by outcome", ["outcome"], registry=registry
        )
        self.dropped = Counter(
            "yaguar_pipeline_dropped", "frames not inferred, by reason", ["reason"], registry=registry
        )
        self.detections = Counter(
            "yaguar_pipeline_detections", "boxes stored, by category", ["category"], registry=registry
        )
        self.stage = Histogram(
            "yaguar_pipeline_stage_seconds", "time per batch and stage", ["stage"], registry=registry
        )
        self.queue = Gauge("yaguar_pipeline_queue", "decoded frames waiting for inference", registry=registry)
        self.errors = Counter(
            "yaguar_pipeline_errors", "pipeline failures, by kind", ["kind"], registry=registry
        )


class PipelineComponent:
    name = "pipeline"

    def __init__(self, ctx: StationContext, analyser: Analyser | None = None) -> None:
        self.ctx = ctx
        self.config = ctx.config.pipeline
        self.metrics = PipelineMetrics.of(ctx.metrics)
        self._analyser = analyser
        self._queue: queue.Queue[tuple[FrameInput, Future[FrameInput]] | None] = queue.Queue(
            self.config.queue_size
        )
        # analysed batches waiting for the store thread (small: the database is the real queue)
        self._results: queue.Queue[list[FrameResult] | None] = queue.Queue(2)
        self.worker_id = new_worker_id()  # the owner of this process's leases on frames
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool: ThreadPoolExecutor | None = None
        self.switch: ClassifierSwitch | None = None  # classifiers chosen while running
        self.unavailable: str | None = None  # why the pipeline cannot analyse (bad model), for status
        self._beat = time.monotonic()  # the loader's last turn or the last batch stored: progress
        ctx.health["pipeline"] = self.health_report  # /healthz says whether frames can be analysed

    @property
    def _ready_analyser(self) -> Analyser:
        """The analyser; set by start() before any pipeline thread runs."""
        assert self._analyser is not None, "the pipeline has not started"
        return self._analyser

    @property
    def _ready_pool(self) -> ThreadPoolExecutor:
        assert self._pool is not None, "the pipeline has not started"
        return self._pool

    # --- Component interface -------------------------------------------------------------------
    def start(self) -> None:
        if self._analyser is None:
            try:
                self._analyser = Analyser(self.config)
            except Exception as exc:  # a backend's own error types too: the station must still start
                # The station keeps ingesting; frames stay pending until the models are fixed.
                self.unavailable = " ".join(str(exc).split())[:300] or type(exc).__name__
                self.metrics.errors.labels("model").inc()
                log.error("pipeline not started: %s", exc)
                return
        self.switch = ClassifierSwitch(self.ctx, self._analyser, self.metrics.errors)
        self.switch.poll()  # a choice made while the station was down applies from the first frame
        self.ctx.hooks.media_committed.append(self._on_media)
        self._pool = ThreadPoolExecutor(self.config.decode_threads(), thread_name_prefix="yaguar-decode")
        for target, name in (
            (self._load_loop, "yaguar-pipeline-loader"),
            (self._infer_loop, "yaguar-pipeline"),
            (self._store_loop, "yaguar-pipeline-store"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._wake.set()  # frames left pending by the last run are picked up now

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._on_media in self.ctx.hooks.media_committed:
            self.ctx.hooks.media_committed.remove(self._on_media)
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._release_leases()

    def _release_leases(self) -> None:
        try:
            with self.ctx.session_factory.begin() as session:
                released = release_frames(session, self.worker_id)
        except Exception:  # the database is gone: the leases simply run out (``lease_s``)
            log.warning(
                "could not give back this worker's frames; other workers take them in %.0f s",
                self.config.lease_s,
            )
            return
        if released:
            log.info("gave back %d frames not yet analysed", released)

    def setup_routes(self, app: web.Application) -> None:
        return None

    def health_problem(self) -> str | None:
        """For the service watchdog: a dead thread, or no progress while frames wait. A missing model is
        not one: a restart cannot fix it (``unavailable`` and ``yaguar-station doctor`` say what to do)."""
        if self.unavailable is not None or self._stop.is_set():
            return None
        dead = [t.name for t in self._threads if not t.is_alive()]
        if dead:
            return f"pipeline thread stopped: {', '.join(dead)}"
        idle = time.monotonic() - self._beat
        return f"pipeline made no progress for {idle:.0f} s" if idle > STALL_S else None

    def health_report(self) -> dict[str, Any]:
        """For /healthz (and the Docker health check): can this station analyse frames, and if not, why."""
        return {
            "analysing": self.unavailable is None and self._analyser is not None,
            "problem": self.unavailable,
        }

    @property
    def analyser(self) -> Analyser | None:
        return self._analyser

    # --- loader: claim pending frames, decode ahead --------------------------------------------
    def _on_media(self, media_ids: list[int]) -> None:
        self._wake.set()

    def _load_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.config.poll_interval_s)
            self._wake.clear()
            self._beat = time.monotonic()
            try:
                if self.switch is not None:
                    self.switch.poll()
                while not self._stop.is_set() and self._load_some():
                    pass
                self._close_idle_events()
            except Exception:  # a database hiccup must not end the loader; the next wake retries
                self.metrics.errors.labels("load").inc()
                log.exception("pipeline loader failed; retrying")
                self._stop.wait(1.0)
        self._queue.put(None)

    def _load_some(self) -> bool:
        with self.ctx.session_factory.begin() as session:
            frames = claim_frames(session, self.worker_id, self.config.batch_size, self.config.lease_s)
        for claimed in frames:
            frame = FrameInput(claimed.media_id, claimed.device_id, claimed.burst_id)
            future = self._ready_pool.submit(self._read_and_decode, frame, claimed.path)
            while not self._stop.is_set():
                try:
                    self._queue.put((frame, future), timeout=0.5)  # blocks when full: backpressure
                    break
                except queue.Full:
                    continue
            self.metrics.queue.set(self._queue.qsize())
        return len(frames) == self.config.batch_size

    def _close_idle_events(self) -> None:
        with self.ctx.session_factory.begin() as session:
            closed = close_idle(session, self.config.event_gap_s, list(self.ctx.hooks.event_in_transaction))
        if closed:
            self._events_committed(closed)

    def _events_committed(self, event_ids: list[int]) -> None:
        for callback in list(self.ctx.hooks.events_committed):
            try:
                callback(event_ids)
            except Exception:  # a listener's bug must not stop the pipeline
                self.metrics.errors.labels("hook").inc()
                log.exception("events_committed callback failed")

    def _read_and_decode(self, frame: FrameInput, rel_path: str) -> FrameInput:
        path = Path(self.ctx.media_root) / rel_path
        try:
            frame.data = path.read_bytes()
        except OSError as exc:
            frame.error = DecodeError("unreadable", f"{path.name}: cannot read ({exc.strerror})")
            return frame
        try:
            return self._ready_analyser.decode(frame)
        except Exception as exc:  # an OpenCV failure on one file fails that frame only
            frame.error = DecodeError("decode_failed", f"{path.name}: decoding failed ({str(exc)[:120]})")
            frame.data = None
            return frame

    # --- inference: batches across cameras, one transaction per batch -------------------------
    def _infer_loop(self) -> None:
        finished = False
        while not finished:
            batch, finished = self._take_batch()
            # When stopping, queued frames are left as they are: still pending in the database, they
            # are analysed after the restart, and the stop does not wait for a full queue of inference.
            if batch and not self._stop.is_set():
                self._process(batch)
        self._results.put(None)

    def _store_loop(self) -> None:
        """Storing runs beside inference: the next batch is analysed while this one commits."""
        while (item := self._results.get()) is not None:
            self._store(item)

    def _take_batch(self) -> tuple[list[FrameInput], bool]:
        batch: list[FrameInput] = []
        item = self._queue.get()
        deadline = time.monotonic() + self.config.batch_wait_ms / 1000
        while item is not None:
            batch.append(item[1].result())
            if len(batch) >= self.config.batch_size:
                break
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
        self.metrics.queue.set(self._queue.qsize())
        return batch, item is None

    def _process(self, batch: list[FrameInput]) -> None:
        analyser = self._ready_analyser
        try:
            start = time.perf_counter()
            results = analyser.analyse(batch)
            self.metrics.stage.labels("analyse").observe(time.perf_counter() - start)
        except Exception as exc:  # a model crash on one batch fails those frames, not the station
            log.exception("analysis failed on %d frames", len(batch))
            self.metrics.errors.labels("analyse").inc()
            results = [
                FrameResult(f.key, "failed", f"analysis failed: {str(exc)[:150]}", "analysis") for f in batch
            ]
        self._results.put(results)

    def _store(self, results: list[FrameResult]) -> None:
        start = time.perf_counter()
        for attempt in range(STORE_ATTEMPTS):
            try:
                with self.ctx.session_factory.begin() as session:
                    stored = store_results(
                        session,
                        results,
                        self._ready_analyser.model_ident,
                        self.config.event_gap_s,
                        list(self.ctx.hooks.event_in_transaction),
                        self.worker_id,
                    )
                    renew_leases(session, self.worker_id, self.config.lease_s)
                break
            except OperationalError:  # busy, briefly unreachable, or a deadlock (PostgreSQL): try again
                self.metrics.errors.labels("store_retry").inc()
                log.warning("storing %d results failed (attempt %d); retrying", len(results), attempt + 1)
                if self._stop.wait(0.5 * 2**attempt):
                    return  # stopping: the frames stay pending and are analysed after the restart
            except Exception as exc:  # e.g. a hook's bug: fail these frames, with the reason, and go on
                log.exception("storing %d results failed; marking the frames failed", len(results))
                self.metrics.errors.labels("store").inc()
                self._mark_failed(
                    [cast(int, r.key) for r in results], f"storing results failed: {str(exc)[:150]}"
                )
                return
        else:
            log.error(
                "could not store %d results; the frames stay pending and are retried when their lease "
                "runs out",
                len(results),
            )
            return
        self.metrics.stage.labels("store").observe(time.perf_counter() - start)
        self._beat = time.monotonic()
        if stored.lost:
            # This worker was too slow: the leases ran out and another worker took the frames over.
            self.metrics.errors.labels("lease_lost").inc(len(stored.lost))
            log.warning(
                "%d frames were taken over by another worker; their results here are dropped",
                len(stored.lost),
            )
        lost = set(stored.lost)
        for result in results:
            if result.key in lost:
                continue
            self.metrics.frames.labels(result.state).inc()
            if result.state != "done":
                self.metrics.dropped.labels(result.reason or result.state).inc()
                level = logging.WARNING if result.state == "failed" else logging.DEBUG
                log.log(level, "frame %s %s: %s", result.key, result.state, result.note)
            for det in result.detections:
                self.metrics.detections.labels(det.category).inc()
        if stored.events:
            self._events_committed(stored.events)

    def _mark_failed(self, media_ids: list[int], note: str) -> None:
        try:
            with self.ctx.session_factory.begin() as session:
                for media in session.scalars(select(Media).where(Media.id.in_(media_ids))):
                    media.process_state = "failed"
                    media.process_note = note[:200]
                    media.lease_owner, media.lease_until = None, None
        except Exception:
            log.exception("could not mark frames failed; they stay pending and are retried")
