"""One frame's analysis, shared by the station pipeline and ``yaguar detect``: motion on the decoded
frame, the detector on a batch of frames, species classifiers on the animal boxes.

Building an Analyser loads every model once; a model that cannot be used stops the build with a
one-line ManifestError/BackendError, so the station says why it cannot analyse and keeps ingesting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from yaguar.paths import shared_data_dir
from yaguar.taxonomy import region_species

from .arbiter import general_classifier, second_opinion
from .classifier import Classifier, Guess, name_species
from .config import PipelineConfig
from .decode import DecodedImage, DecodeError, choose_scale, decode_jpeg
from .detector import Detection, Detector
from .look import MOTION_REGION_MAX, Look, LookFrame
from .manifest import ManifestError, find_manifest
from .motion import MotionFilter, MotionResult, PreparedFrame

log = logging.getLogger(__name__)


@dataclass
class FrameInput:
    key: object  # media id, or a file path for the CLI
    camera: str
    burst_id: str | None
    data: bytes | None = None
    decoded: DecodedImage | None = None
    error: DecodeError | None = None
    motion: PreparedFrame | None = None
    finer: dict[int, np.ndarray] = field(default_factory=dict)  # finer decodes made on demand, by scale
    # how ``data`` decodes (bytes, min_side, max_pixels): JPEG at the station, any still type offline
    decoder: Callable[[bytes, int | None, int], DecodedImage] = decode_jpeg


@dataclass
class FrameResult:
    key: object
    state: str  # done, skipped, failed
    note: str | None = None
    reason: str | None = None  # short code for metrics: no_motion, empty_payload, not_jpeg, ...
    motion: MotionResult | None = None
    detections: list[Detection] = field(default_factory=list)
    width: int = 0
    height: int = 0


def resolve_model_dir(config: PipelineConfig) -> Path:
    if config.model_dir is not None:
        return Path(config.model_dir)
    shared = shared_data_dir()
    if shared is None:
        raise ManifestError("no model directory: set [pipeline] model_dir (or YAGUAR_DATA_DIR)")
    return shared / "models"


class Analyser:
    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        model_dir = resolve_model_dir(config)
        # models imported by `yaguar models import` keep their manifest beside their ONNX file
        extra = [d for d in (config.manifest_dir, model_dir) if d is not None]
        options = config.backend_options()

        def detector(name: str, size: tuple[int, int] | None) -> Detector:
            return Detector(
                find_manifest(name, extra),
                model_dir,
                config.backend,
                options,
                config.detection_threshold,
                config.verify_sha256,
                size,
                config.look.fit_shape,
            )

        look = config.look
        self.detector = detector(config.detector, config.detector_input)
        closer = look.closer_input
        if closer is not None and max(closer) <= self.detector.min_side:
            # a model that already looks at more pixels (MegaDetector at 1280) gains nothing from it
            log.info("%s: no closer look at %dx%d, it already runs larger", self.detector.ident, *closer)
            closer = None
        self.look = Look(
            look,
            self.detector,
            detector(config.detector, closer) if closer else None,
            [detector(name, None) for name in look.ensemble],
        )
        self._model_dir, self._manifest_dirs, self._options = model_dir, extra, options
        self.classifiers = self.load_classifiers(config.classifiers)
        self.allowed = region_species(config.region, config.extra_species)
        self.motion = MotionFilter(config.motion)
        self.arbiter = general_classifier(self.classifiers) if look.second_opinion > 0 else None
        self.implausible = frozenset(look.implausible)
        self.min_side = config.decode_min_side or self.look.min_side
        self.timings: dict[str, float] = defaultdict(float)  # seconds spent per stage, for metrics/bench
        # CPU seconds of the thread that analyses (the station's inference thread, its critical path)
        self.analyse_cpu = 0.0
        self._timings_lock = threading.Lock()  # decode threads add to it concurrently
        log.info(
            "analyser ready: detector %s, classifiers %s, backend %s",
            self.detector.ident,
            ", ".join(c.ident for c in self.classifiers) or "none",
            self.detector.backend.describe(),
        )

    def load_classifiers(self, names: list[str]) -> list[Classifier]:
        """Load classifiers as this analyser's own; a running station swaps ``self.classifiers`` for
        the result (one assignment, so a frame sees the old list or the new, never a mix)."""
        config = self.config
        return [
            Classifier(
                find_manifest(name, self._manifest_dirs),
                self._model_dir,
                config.backend,
                self._options,
                config.verify_sha256,
            )
            for name in names
        ]

    @property
    def model_ident(self) -> str:
        return self.detector.ident

    def decode(self, frame: FrameInput) -> FrameInput:
        """Decode a frame's bytes (thread-safe: decoding runs in worker threads ahead of inference)."""
        if frame.data is not None and frame.decoded is None and frame.error is None:
            start = time.perf_counter()
            try:
                frame.decoded = frame.decoder(frame.data, self.min_side, self.config.max_pixels)
                frame.motion = self.motion.prepare(frame.decoded.pixels)
            except DecodeError as exc:
                frame.error = exc
            if frame.decoded is None or frame.decoded.scale == 1 or not self.config.look.finer_decode:
                frame.data = None  # kept otherwise: a closer look may decode it finer
            with self._timings_lock:
                self.timings["decode"] += time.perf_counter() - start
        return frame

    def analyse(self, frames: list[FrameInput], use_motion: bool = True) -> list[FrameResult]:
        """Motion, detection and classification on decoded frames, in order (motion state is per camera)."""
        results: list[FrameResult] = []
        to_detect: list[tuple[FrameResult, FrameInput]] = []
        cpu_start = time.thread_time()
        start = time.perf_counter()
        for frame in frames:
            if frame.error is not None or frame.decoded is None:
                note = str(frame.error) if frame.error else "not decoded"
                reason = frame.error.reason if frame.error else "not_decoded"
                results.append(FrameResult(frame.key, "failed", note, reason))
                continue
            decoded = frame.decoded
            result = FrameResult(frame.key, "done", width=decoded.width, height=decoded.height)
            if use_motion:
                prepared = frame.motion or decoded.pixels
                result.motion = self.motion.update(frame.camera, prepared, frame.burst_id)
                if self.config.skip_without_motion and not result.motion.moved:
                    result.state, result.reason = "skipped", "no_motion"
                    result.note = (
                        f"no motion ({'night' if result.motion.night else 'day'}, score "
                        f"{result.motion.score:.4f} vs {result.motion.reference})"
                    )
            results.append(result)
            if result.state == "done":
                to_detect.append((result, frame))
        self.timings["motion"] += time.perf_counter() - start
        if to_detect:
            start = time.perf_counter()
            found = self.look.detect([self._look_frame(frame, result) for result, frame in to_detect])
            self.timings["detect"] += time.perf_counter() - start
            start = time.perf_counter()
            look = self.config.look
            for (result, frame), boxes in zip(to_detect, found, strict=True):
                kept = boxes
                seen: dict[int, list[Guess]] = {}  # the second opinion's guesses, reused for the species
                if self.arbiter is not None:
                    # The second opinion decides whether a box exists: its crops get the classifier's
                    # full input size where the frame has the pixels (the closer look's decode, mostly).
                    weak = [d for d in boxes if d.confidence < look.sure or d.category != "animal"]
                    side = max(self.arbiter.manifest.input.width, self.arbiter.manifest.input.height)
                    crops_from = self._crop_source(frame, weak, side)
                    kept = second_opinion(
                        crops_from,
                        boxes,
                        self.arbiter,
                        look.sure,
                        look.second_opinion,
                        self.implausible,
                        seen,
                    )
                pixels = self._crop_source(
                    frame, [d for d in kept if d.category == "animal"], look.crop_min_side
                )
                reuse = (self.arbiter, seen) if self.arbiter is not None else None
                name_species(pixels, kept, self.classifiers, self.allowed, reuse)
                result.detections = kept
                frame.data, frame.finer = None, {}
            self.timings["classify"] += time.perf_counter() - start
        self.analyse_cpu += time.thread_time() - cpu_start
        return results

    def _finer(self, frame: FrameInput, min_side: int) -> np.ndarray | None:
        """The frame decoded again with its longer side at least ``min_side`` (never beyond its native
        size), when that is finer than the first decode; None when there is nothing finer to get."""
        decoded = frame.decoded
        if decoded is None or frame.data is None or not self.config.look.finer_decode:
            return None
        scale = choose_scale(decoded.width, decoded.height, min_side)
        if scale >= decoded.scale:
            return None
        if scale not in frame.finer:
            try:
                frame.finer[scale] = frame.decoder(frame.data, min_side, self.config.max_pixels).pixels
            except DecodeError:
                return None
        return frame.finer[scale]

    def _look_frame(self, frame: FrameInput, result: FrameResult) -> LookFrame:
        assert frame.decoded is not None
        motion = result.motion
        # Regions are hints of where an animal moved only against the burst's previous frame and when
        # the rest of the frame stayed still: when more of it changed (the light, the camera, a new
        # scene), the whole-frame passes are what can find the animal.
        localised = motion is not None and motion.reference == "burst" and motion.score <= MOTION_REGION_MAX
        regions = motion.regions if motion is not None and localised else []
        night = motion.night if motion is not None else self.motion.is_night(frame.decoded.pixels)
        burst = f"{frame.camera}/{frame.burst_id}" if frame.burst_id is not None else None
        return LookFrame(frame.decoded.pixels, night, regions, lambda side: self._finer(frame, side), burst)

    def _crop_source(self, frame: FrameInput, detections: list[Detection], want: int) -> np.ndarray:
        """The decode to cut classifier crops from: a finer one when the smallest box to classify is
        below ``want`` pixels in the first decode, just fine enough to reach it (a finer decode the
        closer look already made is reused)."""
        assert frame.decoded is not None
        pixels = frame.decoded.pixels
        if not detections or not self.classifiers or want <= 0:
            return pixels
        smallest = min(max(d.bbox[2], d.bbox[3]) for d in detections)
        longer = max(pixels.shape[:2])
        if smallest * longer >= want or smallest <= 0:
            return pixels
        finer = self._finer(frame, int(min(want / smallest, 4 * longer)))
        return pixels if finer is None else finer
