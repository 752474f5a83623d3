"""Motion filter: did anything move in front of this camera, and where?

Per camera, each frame is compared with the previous frame of the same burst and with a slowly updated
background model of that camera. Frames are shrunk to a small grey image first (motion needs no
detail), aligned against small camera shake with phase correlation, and the timestamp bars camera traps
stamp on the image are masked. Infrared night frames (near-greyscale) are noisier and get their own
thresholds. The result is a score (the changed fraction of the frame) and the changed regions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import cv2
import numpy as np
from pydantic import Field

from yaguar.config import Section


class MotionTuning(Section):
    blur: int = Field(ge=1, le=31, description="Gaussian blur kernel (odd) before differencing")
    diff_threshold: int = Field(ge=1, le=255, description="grey-level change that counts as a changed pixel")
    min_region: float = Field(gt=0, lt=1, description="smallest changed region, as a fraction of the frame")
    min_score: float = Field(gt=0, lt=1, description="changed fraction of the frame that counts as motion")


class MotionConfig(Section):
    width: int = Field(default=320, ge=64, le=1280, description="frames are shrunk to this width first")
    day: MotionTuning = Field(
        default_factory=lambda: MotionTuning(blur=5, diff_threshold=30, min_region=0.002, min_score=0.003),
        description="colour daylight frames: leaves and shadows move, noise is low",
    )
    night: MotionTuning = Field(
        default_factory=lambda: MotionTuning(blur=7, diff_threshold=22, min_region=0.003, min_score=0.004),
        description="infrared night frames: low contrast, more sensor noise",
    )
    grey_tolerance: float = Field(
        default=3.0, ge=0, le=50, description="mean channel difference below which a frame is infrared night"
    )
    mask_top: float = Field(default=0.06, ge=0, le=0.3, description="top band ignored (camera info bar)")
    mask_bottom: float = Field(
        default=0.08, ge=0, le=0.3, description="bottom band ignored (camera info bar)"
    )
    background_alpha: float = Field(
        default=0.1, gt=0, le=1, description="how fast the background model adapts"
    )
    max_shift: float = Field(
        default=0.03, ge=0, le=0.2, description="camera shake compensated, fraction of width"
    )


@dataclass
class MotionResult:
    score: float  # changed fraction of the frame (0..1)
    moved: bool
    night: bool
    reference: str  # "burst" (previous frame of the burst), "background", or "none" (nothing to compare)
    regions: list[list[float]] = field(default_factory=list)  # [x, y, w, h] normalised, largest first


@dataclass(frozen=True)
class PreparedFrame:
    grey: np.ndarray  # small, grey, blurred
    night: bool


@dataclass
class _CameraState:
    burst_id: str | None = None
    previous: np.ndarray | None = None
    background: np.ndarray | None = None  # float32 running average
    night: bool | None = None


class MotionFilter:
    """Thread-safe; one state per camera id."""

    def __init__(self, config: MotionConfig | None = None) -> None:
        self.config = config or MotionConfig()
        self._cameras: dict[str, _CameraState] = {}
        self._lock = threading.Lock()

    def is_night(self, image: np.ndarray) -> bool:
        """Infrared night frames are (nearly) grey: the channels barely differ."""
        small = cv2.resize(image, (64, 48), interpolation=cv2.INTER_AREA).astype(np.int16)
        b, g, r = small[..., 0], small[..., 1], small[..., 2]
        spread = float(np.mean(np.abs(b - g)) + np.mean(np.abs(g - r)))
        return spread < self.config.grey_tolerance

    def prepare(self, image: np.ndarray) -> PreparedFrame:
        """The stateless part (shrink, grey, blur, day/night): runs in the decode threads, in parallel."""
        night = self.is_night(image)
        tuning = self.config.night if night else self.config.day
        return PreparedFrame(self._prepare(image, tuning.blur), night)

    def update(
        self, camera: str, image: np.ndarray | PreparedFrame, burst_id: str | None = None
    ) -> MotionResult:
        """Score one frame of a camera (BGR, or prepared) against its burst and background, then learn."""
        prepared = image if isinstance(image, PreparedFrame) else self.prepare(image)
        grey, night = prepared.grey, prepared.night
        tuning = self.config.night if night else self.config.day
        with self._lock:
            state = self._cameras.setdefault(camera, _CameraState())
            same_burst = burst_id is not None and burst_id == state.burst_id
            previous = state.previous if state.night == night else None  # a day frame never meets a night one
            if previous is not None and previous.shape == grey.shape and same_burst:
                reference, kind = previous, "burst"
            elif (
                previous is not None and state.background is not None and state.background.shape == grey.shape
            ):
                reference, kind = state.background.astype(np.uint8), "background"
            else:
                reference, kind = None, "none"
            self._learn(state, grey, night, burst_id)
        if reference is None:
            return MotionResult(score=0.0, moved=True, night=night, reference="none")
        return self._compare(grey, reference, tuning, night, kind)

    def forget(self, camera: str) -> None:
        with self._lock:
            self._cameras.pop(camera, None)

    def _prepare(self, image: np.ndarray, blur: int) -> np.ndarray:
        height = max(1, round(image.shape[0] * self.config.width / image.shape[1]))
        small = cv2.resize(image, (self.config.width, height), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        blur |= 1
        return cv2.GaussianBlur(grey, (blur, blur), 0)

    def _learn(self, state: _CameraState, grey: np.ndarray, night: bool, burst_id: str | None) -> None:
        if state.background is None or state.night != night or state.background.shape != grey.shape:
            state.background = grey.astype(np.float32)
        else:
            cv2.accumulateWeighted(grey, state.background, self.config.background_alpha)
        state.previous, state.night, state.burst_id = grey, night, burst_id

    def _compare(
        self, grey: np.ndarray, reference: np.ndarray, tuning: MotionTuning, night: bool, kind: str
    ) -> MotionResult:
        height, width = grey.shape
        reference = self._align(grey, reference)
        # Exposure changes between frames shift every pixel alike: remove the median shift first.
        diff = grey.astype(np.int16) - reference.astype(np.int16)
        diff -= int(np.median(diff))
        changed = (np.abs(diff) > tuning.diff_threshold).astype(np.uint8)
        top, bottom = int(height * self.config.mask_top), int(height * self.config.mask_bottom)
        changed[:top] = 0
        if bottom:
            changed[height - bottom :] = 0
        opened = cv2.morphologyEx(changed, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        grown = cv2.dilate(opened, np.ones((5, 5), np.uint8))
        count, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
        area = float(height * width)
        regions = []
        moved_pixels = 0
        for x, y, w, h, pixels in stats[1:count]:
            if pixels / area >= tuning.min_region:
                regions.append(
                    (int(pixels), [float(x / width), float(y / height), float(w / width), float(h / height)])
                )
                moved_pixels += pixels
        regions.sort(key=lambda item: -item[0])
        score = float(moved_pixels / area)
        return MotionResult(
            score=round(score, 5),
            moved=score >= tuning.min_score,
            night=night,
            reference=kind,
            regions=[[round(v, 4) for v in r] for _, r in regions[:10]],
        )

    def _align(self, grey: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Shift the reference onto the frame when the camera shook a little (wind on the tree)."""
        limit = self.config.max_shift * grey.shape[1]
        if limit < 1:
            return reference
        (dx, dy), _ = cv2.phaseCorrelate(reference.astype(np.float32), grey.astype(np.float32))
        if (abs(dx) < 0.5 and abs(dy) < 0.5) or abs(dx) > limit or abs(dy) > limit:
            return reference
        matrix = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
        return cv2.warpAffine(
            reference, matrix, (grey.shape[1], grey.shape[0]), borderMode=cv2.BORDER_REPLICATE
        )
