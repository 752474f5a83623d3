"""MegaDetector batch output, format 1.6 (what Timelapse and AddaxAI read).

One entry per processed frame: ``file`` relative to the media root, ``detections`` with the category
("1" animal, "2" person, "3" vehicle), ``conf`` and ``bbox`` = [x_min, y_min, width, height] relative to
the image; species from the classifier as ``classifications`` [[class id, confidence]]. A frame the
pipeline could not read gets ``failure`` and no detections, as the format asks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from yaguar.server.dashboard.species import common_name

from .records import ExportScope, iter_media

FORMAT_VERSION = "1.6"
DETECTION_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}
CATEGORY_IDS = {name: cid for cid, name in DETECTION_CATEGORIES.items()}


def build(db: Session, scope: ExportScope | None = None, now: datetime | None = None) -> dict[str, Any]:
    scope = scope or ExportScope()
    now = now or datetime.now(UTC)
    images: list[dict[str, Any]] = []
    species_ids: dict[str, str] = {}
    detectors: set[str] = set()
    classifiers: set[str] = set()
    for frame in iter_media(db, scope, processed_only=True):
        entry: dict[str, Any] = {"file": frame.path}
        if frame.process_state == "failed":
            entry["failure"] = frame.process_note or "the frame could not be processed"
            entry["detections"] = None
            images.append(entry)
            continue
        detections = []
        for det in frame.detections:
            category = CATEGORY_IDS.get(det.category)
            if category is None:
                continue
            detectors.add(det.model)
            item: dict[str, Any] = {
                "category": category,
                "conf": round(min(1.0, max(0.0, float(det.confidence))), 3),
                "bbox": _inside(det.x, det.y, det.w, det.h),
            }
            if det.species:
                class_id = species_ids.setdefault(det.species, str(len(species_ids) + 1))
                item["classifications"] = [[class_id, round(float(det.species_confidence or 0.0), 3)]]
                if det.classifier:
                    classifiers.add(det.classifier)
            detections.append(item)
        entry["max_detection_conf"] = max((d["conf"] for d in detections), default=0.0)
        entry["detections"] = detections
        images.append(entry)
    info: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "detector": ", ".join(sorted(detectors)) or "unknown",
        "detection_completion_time": now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    if classifiers:
        info["classifier"] = ", ".join(sorted(classifiers))
        info["classification_completion_time"] = info["detection_completion_time"]
    result: dict[str, Any] = {"info": info, "detection_categories": DETECTION_CATEGORIES, "images": images}
    if species_ids:
        result["classification_categories"] = {cid: name for name, cid in species_ids.items()}
        result["classification_category_descriptions"] = {
            cid: common_name(name, "en") or name for name, cid in species_ids.items()
        }
    return result


def _inside(x: float, y: float, w: float, h: float) -> list[float]:
    """[x, y, w, h] clipped so the box stays inside the image (x + w <= 1, y + h <= 1)."""
    x = min(1.0, max(0.0, x))
    y = min(1.0, max(0.0, y))
    return [
        round(x, 4),
        round(y, 4),
        round(min(max(w, 0.0), 1.0 - x), 4),
        round(min(max(h, 0.0), 1.0 - y), 4),
    ]
