"""The yardstick: how well a detector setting finds what MegaDetector v5 finds, on the station's path.

``score_setting(config)`` builds the station's ``Analyser`` from a ``PipelineConfig`` (the same decode,
the same thresholds, the same passes as the station and ``yaguar detect``) and scores it against
MegaDetector v5's own boxes (``reference/megadetector_v5_boxes.json`` in the shared data):

- recall of MegaDetector's animal frames: a frame is found when one of our boxes overlaps one of
  MegaDetector's animal boxes with IoU >= 0.3 (any of our categories: a wrong category is counted
  apart, in the confusion table), separately for day and night (night: captured 19:00-06:00 by the
  EXIF time or the file name's ``_YYYYMMDD_HHMM``, or an infrared grey frame);
- false detections on blank frames: the largest part of each reference frame with the animal (or
  person) cut away, a real day, snow or night-infrared background; each whole reference frame with its
  boxes painted over from their surroundings (the camera's stamps, bars and the whole scene kept, as in
  a frame where nothing passed); the shared empty frame and ``scream.jpg``. Every box we write on a
  blank is a false detection, and those at or above the alert threshold are counted apart;
- category confusion: MegaDetector's category against ours, for the boxes that match.

Blanks are made in memory and JPEG-encoded at quality 95 so they take the same decode path.
Usage from Python (e.g. to score a quantized model)::

    from yaguar.engine.config import PipelineConfig
    from yaguar.engine.quality import score_setting
    report = score_setting(PipelineConfig(detector="yolox_nano", classifiers=[]))
    print(report.recall("night"), report.false_frames)
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from yaguar.paths import shared_data_dir

from .analyser import Analyser, FrameInput
from .config import PipelineConfig
from .postprocess import iou_xywh

MATCH_IOU = 0.3
ALERT_CONFIDENCE = 0.5  # the alert rules' default min_confidence (alerts/config.py)
BLANK_MARGIN = 0.03  # cut this much more than the reference box, a tail or an ear sticks out
BLANK_MIN_SIDE = 0.2  # a blank is at least this fraction of the frame on its shorter side
PAINT_SCALE = 8  # boxes are painted over at 1/8 size: a smooth fill from the surroundings
REFERENCE = Path("reference") / "megadetector_v5_boxes.json"
EXTRA_BLANKS = (Path("images/camera-trap/B013_IMG_0005_empty.jpeg"), Path("images/classic/scream.jpg"))
_EXIF_TIME = re.compile(rb"\d{4}:\d{2}:\d{2} (\d{2}):\d{2}:\d{2}")
_NAME_TIME = re.compile(r"_\d{8}_(\d{2})\d{2}")


@dataclass(frozen=True)
class RefFrame:
    name: str
    path: Path
    boxes: list[tuple[str, list[float]]]  # MegaDetector category, bbox
    night: bool


@dataclass
class FrameScore:
    name: str
    night: bool
    found: bool
    category: str | None  # our category of the best match
    best_iou: float
    extra_boxes: int  # our boxes that match nothing of MegaDetector's


@dataclass
class BlankScore:
    name: str
    boxes: list[tuple[str, float]]  # (category, confidence) of every box we wrote


@dataclass
class QualityReport:
    setting: str
    frames: list[FrameScore] = field(default_factory=list)
    blanks: list[BlankScore] = field(default_factory=list)
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: float = 0.0

    def recall(self, when: str | None = None) -> tuple[int, int]:
        """(found, total) MegaDetector animal frames; ``when`` 'day', 'night' or None for all."""
        chosen = [f for f in self.frames if when is None or f.night == (when == "night")]
        return sum(f.found for f in chosen), len(chosen)

    @property
    def false_frames(self) -> int:
        """Blanks with any box written."""
        return sum(1 for b in self.blanks if b.boxes)

    @property
    def false_boxes(self) -> int:
        return sum(len(b.boxes) for b in self.blanks)

    def false_frames_at(self, confidence: float) -> int:
        return sum(1 for b in self.blanks if any(c >= confidence for _, c in b.boxes))

    @property
    def wrong_category(self) -> int:
        """Matched boxes whose category is not MegaDetector's (a deer called a person)."""
        return sum(n for (ref, ours), n in self.confusion.items() if ours not in (ref, "missed"))


def _is_grey(image: np.ndarray) -> bool:
    small = cv2.resize(image, (64, 48), interpolation=cv2.INTER_AREA).astype(np.int16)
    return (
        float(np.abs(small[..., 0] - small[..., 1]).mean() + np.abs(small[..., 1] - small[..., 2]).mean()) < 3
    )


def _night(path: Path, data: bytes) -> bool:
    hour = None
    exif = _EXIF_TIME.search(data[:65536])
    if exif:
        hour = int(exif.group(1))
    else:
        named = _NAME_TIME.search(path.stem)
        hour = int(named.group(1)) if named else None
    if hour is not None:
        return hour >= 19 or hour < 6
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_COLOR_8)
    return image is not None and _is_grey(image)


def reference_frames(data_dir: Path | None = None) -> list[RefFrame]:
    """The reference's frames that are present in the shared images, with their day/night label."""
    data_dir = data_dir or shared_data_dir()
    if data_dir is None:
        raise FileNotFoundError("shared data (../shared/data or YAGUAR_DATA_DIR) is not present")
    reference = json.loads((data_dir / REFERENCE).read_text(encoding="utf-8"))["images"]
    paths = {p.name: p for p in (data_dir / "images").rglob("*") if p.name in reference}
    frames = []
    for name in sorted(reference):
        if name not in paths:
            continue
        path = paths[name]
        boxes = [(b["category"], [float(v) for v in b["bbox"]]) for b in reference[name]]
        frames.append(RefFrame(name, path, boxes, _night(path, path.read_bytes())))
    return frames


def blank_part(image: np.ndarray, boxes: list[list[float]]) -> np.ndarray | None:
    """The largest band of the frame (left, right, above or below every box, with a margin) that no
    reference box touches; None when no band is big enough to be a frame of its own."""
    height, width = image.shape[:2]
    x1 = min(b[0] for b in boxes) - BLANK_MARGIN
    y1 = min(b[1] for b in boxes) - BLANK_MARGIN
    x2 = max(b[0] + b[2] for b in boxes) + BLANK_MARGIN
    y2 = max(b[1] + b[3] for b in boxes) + BLANK_MARGIN
    bands = {
        "left": (0.0, 0.0, max(0.0, x1), 1.0),
        "right": (min(1.0, x2), 0.0, 1.0, 1.0),
        "above": (0.0, 0.0, 1.0, max(0.0, y1)),
        "below": (0.0, min(1.0, y2), 1.0, 1.0),
    }
    best = max(bands.values(), key=lambda b: (b[2] - b[0]) * width * (b[3] - b[1]) * height)
    bx1, by1, bx2, by2 = (
        int(best[0] * width),
        int(best[1] * height),
        int(best[2] * width),
        int(best[3] * height),
    )
    if min((bx2 - bx1) / width, (by2 - by1) / height) < BLANK_MIN_SIDE:
        return None
    return image[by1:by2, bx1:bx2]


def painted_blank(image: np.ndarray, boxes: list[list[float]]) -> np.ndarray:
    """The whole frame with every box (and a margin) painted over from its surroundings (OpenCV's
    inpainting at 1/``PAINT_SCALE`` size, so the fill is smooth): what a frame where nothing passed
    looks like, with the camera's date stamp, logo and bar where the camera put them."""
    height, width = image.shape[:2]
    mask = np.zeros((height, width), np.uint8)
    for x, y, w, h in boxes:
        x1, y1 = max(0, int((x - BLANK_MARGIN) * width)), max(0, int((y - BLANK_MARGIN) * height))
        mask[y1 : int((y + h + BLANK_MARGIN) * height), x1 : int((x + w + BLANK_MARGIN) * width)] = 255
    small = (max(1, width // PAINT_SCALE), max(1, height // PAINT_SCALE))
    filled = cv2.inpaint(
        cv2.resize(image, small, interpolation=cv2.INTER_AREA),
        cv2.resize(mask, small, interpolation=cv2.INTER_NEAREST),
        5,
        cv2.INPAINT_TELEA,
    )
    patch = cv2.resize(filled, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.where(mask[..., None] > 0, patch, image)


def blank_frames(data_dir: Path | None = None) -> list[tuple[str, bytes]]:
    """(name, JPEG bytes) of every blank: the reference frames with their boxes cut away, the same
    frames whole with their boxes painted over, the empty frame and scream.jpg."""
    data_dir = data_dir or shared_data_dir()
    assert data_dir is not None
    return list(_blank_frames(data_dir))


@functools.cache
def _blank_frames(data_dir: Path) -> tuple[tuple[str, bytes], ...]:
    """Made once per process (a few seconds): every setting scored in a run sees the same bytes."""
    blanks = []
    for frame in reference_frames(data_dir):
        image = cv2.imread(str(frame.path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        boxes = [b for _, b in frame.boxes]
        for name, blank in (("blank", blank_part(image, boxes)), ("painted", painted_blank(image, boxes))):
            if blank is None:
                continue
            ok, data = cv2.imencode(".jpg", blank, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if ok:
                blanks.append((f"{name}:{frame.name}", data.tobytes()))
    for extra in EXTRA_BLANKS:
        path = data_dir / extra
        if path.is_file():
            blanks.append((path.name, path.read_bytes()))
    return tuple(blanks)


def _analyse(analyser: Analyser, name: str, data: bytes) -> list:
    # Each frame is its own camera: no burst to compare with, so motion never skips it (as the first
    # frame of a trigger at the station).
    frame = analyser.decode(FrameInput(name, camera=name, burst_id=None, data=data))
    result = analyser.analyse([frame])[0]
    if result.state != "done":
        raise RuntimeError(f"{name}: {result.state} ({result.note})")
    return result.detections


def score_analyser(analyser: Analyser, setting: str = "", data_dir: Path | None = None) -> QualityReport:
    """Score an already built Analyser (its models loaded) on the reference frames and the blanks."""
    report = QualityReport(setting or analyser.model_ident)
    start = time.perf_counter()
    for frame in reference_frames(data_dir):
        detections = _analyse(analyser, frame.name, frame.path.read_bytes())
        matched: set[int] = set()
        best_iou, best_cat = 0.0, None
        for ref_cat, ref_box in frame.boxes:
            ious = [iou_xywh(ref_box, d.bbox) for d in detections]
            hits = [i for i, v in enumerate(ious) if v >= MATCH_IOU]
            matched.update(hits)
            if hits:
                top = max(hits, key=lambda i: (ious[i], detections[i].confidence))
                report.confusion[(ref_cat, detections[top].category)] += 1
            else:
                report.confusion[(ref_cat, "missed")] += 1
            if ref_cat == "animal" and ious and max(ious) > best_iou:
                best_iou = max(ious)
                best_cat = detections[int(np.argmax(ious))].category
        if any(cat == "animal" for cat, _ in frame.boxes):
            report.frames.append(
                FrameScore(
                    frame.name,
                    frame.night,
                    best_iou >= MATCH_IOU,
                    best_cat,
                    round(best_iou, 3),
                    len(detections) - len(matched),
                )
            )
    for name, data in blank_frames(data_dir):
        detections = _analyse(analyser, name, data)
        report.blanks.append(BlankScore(name, [(d.category, d.confidence) for d in detections]))
    report.seconds = time.perf_counter() - start
    return report


def score_setting(config: PipelineConfig, setting: str = "", data_dir: Path | None = None) -> QualityReport:
    """Build the station's Analyser for ``config`` and score it (see the module docstring)."""
    return score_analyser(Analyser(config.model_copy(update={"enabled": True})), setting, data_dir)
