"""The station's detections as MegaDetector batch output, format 1.6 (what Timelapse and AddaxAI
read), through the one writer, ``yaguar.engine.batch_output``.

One entry per processed frame: ``file`` relative to the media root; a frame the pipeline could not read
gets ``failure`` and no detections, as the format asks. ``typical_detection_threshold`` is the
threshold the station's pipeline cuts detections at.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from yaguar.engine.batch_output import BatchOutput, Box
from yaguar.engine.config import PipelineConfig
from yaguar.engine.manifest import ManifestError, find_manifest

from .records import ExportScope, iter_media


def detection_threshold(config: PipelineConfig) -> float | None:
    """The confidence the pipeline keeps detections from: the configured one, else the detector
    manifest's own; None when the manifest cannot be read."""
    if config.detection_threshold is not None:
        return config.detection_threshold
    try:
        manifests = [config.manifest_dir] if config.manifest_dir else None
        return find_manifest(config.detector, manifests).score_threshold
    except ManifestError:
        return None


def build(
    db: Session, scope: ExportScope | None = None, now: datetime | None = None, threshold: float | None = None
) -> dict[str, Any]:
    output = BatchOutput("", [], threshold)
    detectors: set[str] = set()
    classifiers: set[str] = set()
    for frame in iter_media(db, scope or ExportScope(), processed_only=True):
        if frame.process_state == "failed":
            output.add(frame.path, None, failure=frame.process_note or "the frame could not be processed")
            continue
        boxes = []
        for det in frame.detections:
            detectors.add(det.model)
            if det.species and det.classifier:
                classifiers.add(det.classifier)
            boxes.append(
                Box(
                    det.category,
                    det.confidence,
                    (det.x, det.y, det.w, det.h),
                    det.species,
                    det.species_confidence,
                )
            )
        output.add(frame.path, boxes)
    output.detector = ", ".join(sorted(detectors)) or "unknown"
    output.classifiers = sorted(classifiers)
    return output.to_dict(now)
