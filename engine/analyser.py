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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from yaguar.paths import shared_data_dir
from yaguar.taxonomy import region_species

from .classifier import Classifier, name_species
from .config import PipelineConfig
from .decode import DecodedImage, DecodeError, decode_jpeg
from .detector import Detection, Detector
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
        extra = [config.manifest_dir] if config.manifest_dir else None
        options: dict[str, object] = {"threads": config.inference_threads()}
        if config.device:
            options["device"] = config.device
        if config.backend != "onnxruntime":
            options.update(fp16=config.opencl_fp16, autotune=config.opencl_autotune)
            if config.opencl_cache_dir:
                options["cache_dir"] = str(config.opencl_cache_dir)
        self.detector = Detector(
            find_manifest(config.detector, extra),
            model_dir,
            config.backend,
            options,
            config.detection_threshold,
            config.verify_sha256,
            config.detector_input,
        )
        self._model_dir, self._manifest_dirs, self._options = model_dir, extra, options
        self.classifiers = self.load_classifiers(config.classifiers)
        self.allowed = region_species(config.region, config.extra_species)
        self.motion = MotionFilter(config.motion)
        self.min_side = config.decode_min_side or self.detector.min_side
        self.timings: dict[str, float] = defaultdict(float)  # seconds spent per stage, for metrics/bench
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
                frame.decoded = decode_jpeg(frame.data, self.min_side, self.config.max_pixels)
                frame.motion = self.motion.prepare(frame.decoded.pixels)
            except DecodeError as exc:
                frame.error = exc
            frame.data = None
            with self._timings_lock:
                self.timings["decode"] += time.perf_counter() - start
        return frame

    def analyse(self, frames: list[FrameInput], use_motion: bool = True) -> list[FrameResult]:
        """Motion, detection and classification on decoded frames, in order (motion state is per camera)."""
        results: list[FrameResult] = []
        to_detect: list[tuple[FrameResult, np.ndarray]] = []
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
                to_detect.append((result, decoded.pixels))
        self.timings["motion"] += time.perf_counter() - start
        if to_detect:
            start = time.perf_counter()
            found = self.detector.detect([pixels for _, pixels in to_detect])
            self.timings["detect"] += time.perf_counter() - start
            start = time.perf_counter()
            for (result, pixels), detections in zip(to_detect, found, strict=True):
                name_species(pixels, detections, self.classifiers, self.allowed)
                result.detections = detections
            self.timings["classify"] += time.perf_counter() - start
        return results
