"""From a trigger to frames in the spool: the camera with its retry, the burst, the pre-trigger buffer.

One worker thread takes triggers from a small queue and runs one burst at a time, so the PIR callback
(gpiozero's thread) never waits on the camera or the disk.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .cameras.base import Camera, CameraError, CapturedImage
from .cameras.encode import fit_for_sending
from .config import CaptureConfig
from .metrics import AgentMetrics
from .spool import Spool, atomic_write

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trigger:
    """Why a burst starts. ``at`` is ``time.monotonic()`` of the edge, for latency measurements."""

    kind: str  # pir | timelapse | command | test
    at: float = field(default_factory=time.monotonic)
    burst_size: int | None = None  # a command may ask for another size


class CameraRunner:
    """The camera with its failures handled: a failed open or capture is logged, counted, remembered
    for the heartbeat, and retried no sooner than ``retry_s`` later."""

    def __init__(self, camera: Camera, metrics: AgentMetrics, retry_s: float = 5.0) -> None:
        self.camera = camera
        self.metrics = metrics
        self.retry_s = retry_s
        self.error: str | None = None
        self._failed_at: float | None = None
        self._failed_stage: str | None = None
        self._lock = threading.Lock()

    @property
    def ok(self) -> bool:
        return self.error is None

    def ensure_open(self) -> bool:
        """Open the camera now (at start, so a broken camera shows in the first heartbeat)."""
        with self._lock:
            return self._open()

    def _open(self) -> bool:
        if self.camera.is_open:
            return True
        if self._failed_at is not None and time.monotonic() - self._failed_at < self.retry_s:
            return False
        try:
            self.camera.open()
        except CameraError as exc:
            self._fail("open", exc)
            return False
        log.info("camera: %s open", self.camera.describe())
        if self._failed_stage == "open":
            self.error, self._failed_at, self._failed_stage = None, None, None
        return True

    def grab(self) -> CapturedImage | None:
        """One image, or None when the camera failed (already logged and counted)."""
        with self._lock:
            if not self._open():
                return None
            try:
                image = self.camera.capture()
            except CameraError as exc:
                self._fail("capture", exc)
                self.camera.close()  # reopen on the next try: a USB camera may have been replugged
                return None
            if self.error is not None:
                log.info("camera: working again after: %s", self.error)
            self.error, self._failed_at, self._failed_stage = None, None, None
            return image

    def _fail(self, stage: str, exc: CameraError) -> None:
        self.error = str(exc)[:200]
        self._failed_at = time.monotonic()
        self._failed_stage = stage
        self.metrics.camera_errors.labels(stage=stage).inc()
        log.warning("camera: %s failed: %s (retry in %.0f s)", stage, self.error, self.retry_s)

    def close(self) -> None:
        with self._lock:
            self.camera.close()


class PretriggerBuffer:
    """The camera at a low frame rate into a RAM ring of the last ``frames`` images, so a burst can
    include what happened just before the PIR fired. Off by default: the camera never sleeps."""

    def __init__(self, runner: CameraRunner, frames: int, fps: float) -> None:
        self.runner = runner
        self._ring: collections.deque[CapturedImage] = collections.deque(maxlen=frames)
        self._period = 1.0 / fps
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="pretrigger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            image = self.runner.grab()
            if image is not None:
                with self._lock:
                    self._ring.append(image)
            self._stop.wait(max(0.0, self._period - (time.monotonic() - started)))

    def take(self) -> list[CapturedImage]:
        """The buffered images, oldest first; the ring is emptied so no image is sent twice."""
        with self._lock:
            images = list(self._ring)
            self._ring.clear()
        return images


def burst(
    runner: CameraRunner, size: int, interval_s: float, stop: threading.Event | None = None
) -> Iterator[tuple[int, CapturedImage]]:
    """(index, image) for each frame of a burst, paced on the monotonic clock; failed frames are skipped."""
    start = time.monotonic()
    for index in range(size):
        delay = start + index * interval_s - time.monotonic()
        if delay > 0 and stop is not None and stop.wait(delay):
            return
        if delay > 0 and stop is None:
            time.sleep(delay)
        image = runner.grab()
        if image is not None:
            yield index, image


class BurstWorker:
    """Takes triggers from a queue and writes each burst's frames to the spool."""

    def __init__(
        self,
        device_id: str,
        runner: CameraRunner,
        spool: Spool,
        *,
        settings: Callable[[], CaptureConfig],
        metrics: AgentMetrics,
        pretrigger: PretriggerBuffer | None = None,
        on_frame: Callable[[Trigger, int], None] | None = None,
        illuminator: contextlib.AbstractContextManager[Any] | None = None,
    ) -> None:
        self.device_id = device_id
        self.runner = runner
        self.spool = spool
        self.settings = settings
        self.metrics = metrics
        self.pretrigger = pretrigger
        self.on_frame = on_frame  # benchmark/test hook: (trigger, seq) after a frame is spooled
        self.illuminator = illuminator
        self._queue: queue.Queue[Trigger] = queue.Queue(maxsize=8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="burst", daemon=True)
        self._events = 0
        self.last_beat = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def is_alive(self, max_silence_s: float = 300.0) -> bool:
        """The thread runs and has shown a sign of life lately (a camera hung in a capture has not)."""
        return self._thread.is_alive() and time.monotonic() - self.last_beat < max_silence_s

    def submit(self, trigger: Trigger) -> bool:
        """Queue a trigger; False (logged) when bursts are already piling up."""
        try:
            self._queue.put_nowait(trigger)
        except queue.Full:
            log.warning(
                "capture: %s trigger dropped, %d bursts already waiting", trigger.kind, self._queue.qsize()
            )
            return False
        self.metrics.triggers.labels(kind=trigger.kind).inc()
        return True

    def _run(self) -> None:
        self.runner.ensure_open()  # here, not in start(): a camera may take a second to open
        while not self._stop.is_set():
            self.last_beat = time.monotonic()
            try:
                trigger = self._queue.get(timeout=0.5)
            except queue.Empty:
                if not self.runner.ok:
                    self.runner.ensure_open()  # keep retrying a broken camera between triggers
                continue
            try:
                self.run_burst(trigger)
            except Exception:  # one bad burst must not stop the camera for months
                log.exception("capture: burst for a %s trigger failed", trigger.kind)

    def new_event_id(self) -> str:
        """Unique on the device for ever: the spool's next seq is never handed out twice, even across
        reboots with a clock that went back (a Pi has no RTC)."""
        self._events += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3]
        return f"{stamp}Z-{self.spool.next_seq}-{self._events}"

    def run_burst(self, trigger: Trigger) -> int:
        """Capture one burst and spool it; the number of frames spooled."""
        cfg = self.settings()
        size = trigger.burst_size or cfg.burst_size
        event_id = self.new_event_id()
        before = self.pretrigger.take() if self.pretrigger is not None else []
        spooled = 0
        for offset, image in enumerate(before):
            spooled += self._spool(trigger, cfg, event_id, index=offset - len(before), size=size, image=image)
        with self.illuminator or contextlib.nullcontext():
            # Each frame is spooled as soon as it is taken: the first one is on its way during the rest.
            for index, image in burst(self.runner, size, cfg.burst_interval_s, self._stop):
                self.last_beat = time.monotonic()
                spooled += self._spool(trigger, cfg, event_id, index=index, size=size, image=image)
        log.info("capture: %s burst %s: %d frames spooled", trigger.kind, event_id, spooled)
        return spooled

    def _spool(
        self,
        trigger: Trigger,
        cfg: CaptureConfig,
        event_id: str,
        *,
        index: int,
        size: int,
        image: CapturedImage,
    ) -> int:
        capture_id = f"{event_id}.{index}"
        try:
            sent = fit_for_sending(image, cfg.max_send_px, cfg.jpeg_quality, cfg.max_send_bytes)
        except CameraError as exc:
            self.metrics.camera_errors.labels(stage="encode").inc()
            log.warning("capture: frame %s dropped: %s", capture_id, exc)
            return 0
        if cfg.full_res_dir is not None and sent is not image:
            self._keep_full_res(cfg.full_res_dir, capture_id, image)
        frame = self.spool.put(
            sent.jpeg,
            device=self.device_id,
            capture_id=capture_id,
            event_id=event_id,
            burst_index=index,
            burst_size=size,
            captured_at=sent.captured_at,
            trigger=trigger.kind,
            width=sent.width,
            height=sent.height,
        )
        if frame is None:
            return 0
        if self.on_frame is not None:
            self.on_frame(trigger, frame.seq)
        return 1

    def _keep_full_res(self, folder: Path, capture_id: str, image: CapturedImage) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / f"{capture_id}.jpg", image.jpeg, fsync=False)
        except OSError as exc:
            log.warning("capture: full-resolution copy of %s not kept: %s", capture_id, exc)
