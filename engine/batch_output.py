"""MegaDetector batch output (format 1.6): the one writer, used by ``yaguar detect`` and the station's
export, and a validator of the format's published rules (as MegaDetector's own
``validate_batch_results`` checks them, plus box and confidence ranges), so the files open in
Timelapse, EcoAssist/AddaxAI and MegaDetector's postprocessing tools.

The rules the writer keeps: detection categories are the strings "1" animal, "2" person, "3" vehicle;
classification categories are string ids numbered from "1" in order of first use; ``conf`` is in [0, 1]
with 3 decimals and ``bbox`` = [x_min, y_min, width, height] relative to the image, clipped inside it
(x + w <= 1, y + h <= 1) with 4 decimals, as MegaDetector writes them; ``typical_detection_threshold``
is the threshold the detections were really cut at (left out when it is not known); a file that could
not be processed has ``failure`` and ``detections: null``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from yaguar.taxonomy import common_name

FORMAT_VERSION = "1.6"
DETECTION_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}
CATEGORY_IDS = {name: key for key, name in DETECTION_CATEGORIES.items()}
REQUIRED_KEYS = ("info", "images", "detection_categories")
OPTIONAL_KEYS = ("classification_categories", "classification_category_descriptions")
CONF_DIGITS, COORD_DIGITS = 3, 4  # as MegaDetector's run_detector writes them


class BoxLike(Protocol):
    """A detection as both the engine (``detector.Detection``) and the station (``Box``) hold it."""

    @property
    def category(self) -> str: ...
    @property
    def confidence(self) -> float: ...
    @property
    def bbox(self) -> Sequence[float]: ...
    @property
    def species(self) -> str | None: ...
    @property
    def species_confidence(self) -> float | None: ...


@dataclass(frozen=True)
class Box:
    category: str
    confidence: float
    bbox: Sequence[float]
    species: str | None = None
    species_confidence: float | None = None


def clipped_box(bbox: Sequence[float]) -> list[float]:
    """[x, y, w, h] clipped so the box stays inside the image (x + w <= 1, y + h <= 1)."""
    x, y, w, h = (float(v) for v in bbox)
    x, y = min(1.0, max(0.0, x)), min(1.0, max(0.0, y))
    w, h = min(max(w, 0.0), 1.0 - x), min(max(h, 0.0), 1.0 - y)
    return [round(v, COORD_DIGITS) for v in (x, y, w, h)]


def confidence(value: float | None) -> float:
    return round(min(1.0, max(0.0, float(value or 0.0))), CONF_DIGITS)


class BatchOutput:
    """Collects per-image results and writes the JSON file.

    ``threshold``: the confidence the detections were cut at (``typical_detection_threshold``).
    """

    def __init__(self, detector: str, classifiers: list[str], threshold: float | None = None) -> None:
        self.detector = detector
        self.classifiers = classifiers
        self.threshold = threshold
        self.images: list[dict[str, Any]] = []
        self.species_ids: dict[str, str] = {}  # scientific name -> classification category id

    def add(
        self, file: str, detections: Iterable[BoxLike] | None, failure: str | None = None
    ) -> dict[str, Any]:
        """One image's entry (returned, so a caller may add fields such as a video's frame rate)."""
        if failure is not None:
            image: dict[str, Any] = {"file": file, "failure": failure, "detections": None}
            self.images.append(image)
            return image
        entries = []
        for det in detections or []:
            category = CATEGORY_IDS.get(det.category)
            if category is None:  # a label the format has no category for
                continue
            entry: dict[str, Any] = {
                "category": category,
                "conf": confidence(det.confidence),
                "bbox": clipped_box(det.bbox),
            }
            if det.species:
                species_id = self.species_ids.setdefault(det.species, str(len(self.species_ids) + 1))
                entry["classifications"] = [[species_id, confidence(det.species_confidence)]]
            entries.append(entry)
        image = {
            "file": file,
            "max_detection_conf": max((e["conf"] for e in entries), default=0.0),
            "detections": entries,
        }
        self.images.append(image)
        return image

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        when = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        info: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "detector": self.detector,
            "detection_completion_time": when,
        }
        if self.threshold is not None:
            info["detector_metadata"] = {"typical_detection_threshold": float(self.threshold)}
        data: dict[str, Any] = {
            "info": info,
            "detection_categories": dict(DETECTION_CATEGORIES),
            "images": self.images,
        }
        if self.species_ids:
            info["classifier"] = ", ".join(self.classifiers)
            info["classification_completion_time"] = when
            data["classification_categories"] = {v: k for k, v in self.species_ids.items()}
            data["classification_category_descriptions"] = {
                v: common_name(k, "en") for k, v in self.species_ids.items()
            }
        return data

    def write(self, path: Path) -> None:
        tmp = Path(path).with_suffix(Path(path).suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        tmp.replace(path)


def validate_batch_output(data: Any) -> list[str]:
    """Every rule the file breaks, one line each; an empty list means the file is valid."""
    if not isinstance(data, dict):
        return ["the file is not a JSON object"]
    errors = [f"missing top-level key {key!r}" for key in REQUIRED_KEYS if key not in data]
    errors += [
        f"non-standard top-level key {key!r}" for key in data if key not in REQUIRED_KEYS + OPTIONAL_KEYS
    ]
    if errors:
        return errors
    info = data["info"]
    if not isinstance(info, dict) or "format_version" not in info:
        return ["info.format_version is missing"]
    try:
        if float(info["format_version"]) < 1.3:
            errors.append(f"format_version {info['format_version']} is older than 1.3")
    except (TypeError, ValueError):
        errors.append(f"format_version {info['format_version']!r} is not a version number")
    for field in ("detection_categories", "classification_categories"):
        for key, name in (data.get(field) or {}).items():
            if not (isinstance(key, str) and key.isdigit() and isinstance(name, str)):
                errors.append(f"{field}: {key!r} -> {name!r} is not a string-int id to a name")
    if not isinstance(data["images"], list):
        return [*errors, "images is not a list"]
    for index, image in enumerate(data["images"]):
        errors += _validate_image(index, image, data)
    return errors


def _validate_image(index: int, image: Any, data: dict[str, Any]) -> list[str]:
    if not isinstance(image, dict) or not isinstance(image.get("file"), str):
        return [f"images[{index}] has no file name"]
    where = f"images[{index}] ({image['file']})"
    if image.get("failure") is not None:
        if not isinstance(image["failure"], str):
            return [f"{where}: failure is not a string"]
        if image.get("detections") is not None:
            return [f"{where}: has a failure but a non-null detections list"]
        return []
    detections = image.get("detections")
    if not isinstance(detections, list):
        return [f"{where}: detections is not a list"]
    errors = []
    for det in detections:
        if not isinstance(det, dict) or not {"category", "conf", "bbox"} <= det.keys():
            errors.append(f"{where}: a detection lacks category, conf or bbox")
            continue
        if det["category"] not in data["detection_categories"]:
            errors.append(f"{where}: unmapped detection category {det['category']!r}")
        if not isinstance(det["conf"], float) or not 0.0 <= det["conf"] <= 1.0:
            errors.append(f"{where}: confidence {det['conf']!r} is not a float in [0, 1]")
        bbox = det["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
            errors.append(f"{where}: bbox {bbox!r} is not four numbers")
        elif not (
            all(0.0 <= v <= 1.0 for v in bbox) and bbox[0] + bbox[2] <= 1.0001 and bbox[1] + bbox[3] <= 1.0001
        ):
            errors.append(f"{where}: bbox {bbox!r} is not inside the image ([0, 1])")
        for cls in det.get("classifications") or []:
            if not (
                isinstance(cls, list)
                and len(cls) == 2
                and isinstance(cls[0], str)
                and cls[0].isdigit()
                and isinstance(cls[1], int | float)
            ):
                errors.append(f"{where}: classification {cls!r} is not [string-int id, confidence]")
            elif cls[0] not in (data.get("classification_categories") or {}):
                errors.append(f"{where}: unmapped classification category {cls[0]!r}")
    if "max_detection_conf" in image:
        best = max((d["conf"] for d in detections if isinstance(d, dict) and "conf" in d), default=0.0)
        if abs(float(image["max_detection_conf"]) - best) > 1e-6:
            errors.append(
                f"{where}: max_detection_conf {image['max_detection_conf']} is not the best conf {best}"
            )
    return errors
