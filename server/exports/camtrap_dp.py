"""Camtrap DP 1.0.2 (https://camtrap-dp.tdwg.org): ``datapackage.json`` with ``deployments.csv``,
``media.csv`` and ``observations.csv``.

Deployments come from the cameras' deployment records (``camtrap_deployments`` says how a camera
without records is placed). Observations
at two levels: per event (the machine's answer, and the newest human review beside it as
``classificationMethod = human``) and per frame (one per detection box, relative to the image).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.orm import Session

from yaguar.server.dashboard_config import ExportMetadata
from yaguar.storage.models import Event, Media

from .camtrap_deployments import DeploymentIndex
from .camtrap_descriptor import package_descriptor
from .records import (
    ExportScope,
    HumanBoxReview,
    HumanReview,
    box_reviews,
    devices,
    iter_events,
    iter_media,
    latest_reviews,
    local_iso,
)

log = logging.getLogger(__name__)


# Every column of the standard's table schemas, in their order (validators compare the header).
DEPLOYMENT_FIELDS = [
    "deploymentID",
    "locationID",
    "locationName",
    "latitude",
    "longitude",
    "coordinateUncertainty",
    "deploymentStart",
    "deploymentEnd",
    "setupBy",
    "cameraID",
    "cameraModel",
    "cameraDelay",
    "cameraHeight",
    "cameraDepth",
    "cameraTilt",
    "cameraHeading",
    "detectionDistance",
    "timestampIssues",
    "baitUse",
    "featureType",
    "habitat",
    "deploymentGroups",
    "deploymentTags",
    "deploymentComments",
]
MEDIA_FIELDS = [
    "mediaID",
    "deploymentID",
    "captureMethod",
    "timestamp",
    "filePath",
    "filePublic",
    "fileName",
    "fileMediatype",
    "exifData",
    "favorite",
    "mediaComments",
]
OBSERVATION_FIELDS = [
    "observationID",
    "deploymentID",
    "mediaID",
    "eventID",
    "eventStart",
    "eventEnd",
    "observationLevel",
    "observationType",
    "cameraSetupType",
    "scientificName",
    "count",
    "lifeStage",
    "sex",
    "behavior",
    "individualID",
    "individualPositionRadius",
    "individualPositionAngle",
    "individualSpeed",
    "bboxX",
    "bboxY",
    "bboxWidth",
    "bboxHeight",
    "classificationMethod",
    "classifiedBy",
    "classificationTimestamp",
    "classificationProbability",
    "observationTags",
    "observationComments",
]
# Our categories -> Camtrap DP observationType.
OBSERVATION_TYPE = {"animal": "animal", "person": "human", "vehicle": "vehicle", "blank": "blank"}
CAPTURE_METHOD = {"timelapse": "timeLapse"}  # pir, command, test: activityDetection
MIN_BOX = 1e-6


@dataclass
class CamtrapSummary:
    deployments: int = 0
    media: int = 0
    observations: int = 0
    cameras_without_position: list[str] = field(default_factory=list)
    outside_deployments: int = 0  # frames of cameras with deployments, taken outside all of them
    species: set[str] = field(default_factory=set)


def write_package(
    db: Session,
    out_dir: Path,
    meta: ExportMetadata,
    scope: ExportScope | None = None,
    now: datetime | None = None,
) -> CamtrapSummary:
    scope = scope or ExportScope()
    now = now or datetime.now(UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = CamtrapSummary()
    cams = devices(db)
    index = DeploymentIndex(db, cams, meta)
    summary.cameras_without_position = index.unplaced
    for camera in summary.cameras_without_position:
        log.warning(
            "camera %s has no position (and no station position is configured): left out of the "
            "Camtrap DP export",
            camera,
        )

    spans: dict[str, tuple[datetime, datetime, int]] = {}
    capture_methods: set[str] = set()
    with (
        _CsvFile(out_dir / "media.csv", MEDIA_FIELDS) as media_out,
        _CsvFile(out_dir / "observations.csv", OBSERVATION_FIELDS) as obs_out,
    ):
        boxes = box_reviews(db)
        for frame in iter_media(db, scope):
            key = index.key_for(frame.device_id, frame.captured_at)
            if key is None:
                summary.outside_deployments += frame.device_id not in summary.cameras_without_position
                continue
            first, last, offset = spans.get(key, (frame.captured_at, frame.captured_at, 0))
            spans[key] = (min(first, frame.captured_at), max(last, frame.captured_at), frame.utc_offset_min)
            row = _media_row(frame, key)
            capture_methods.add(row["captureMethod"])
            media_out.writerow(row)
            summary.media += 1
            for obs in _media_observations(frame, key, boxes):
                obs_out.writerow(obs)
                summary.observations += 1
                if obs["scientificName"]:
                    summary.species.add(obs["scientificName"])
        reviews = latest_reviews(db, scope)
        for event in iter_events(db, scope):
            key = index.key_for(event.device_id, event.started_at)
            if key is None or key not in spans:  # a deployment is exported only with its frames
                continue
            for obs in _event_observations(event, reviews.get(event.id), key):
                obs_out.writerow(obs)
                summary.observations += 1
                if obs["scientificName"]:
                    summary.species.add(obs["scientificName"])
    if summary.outside_deployments:
        log.warning(
            "%d frames were taken outside every deployment of their camera: left out of the Camtrap DP "
            "export (add or widen a deployment on the camera's page)",
            summary.outside_deployments,
        )

    with _CsvFile(out_dir / "deployments.csv", DEPLOYMENT_FIELDS) as dep_out:
        for key, (first, last, offset) in sorted(spans.items()):
            dep_out.writerow(index.row(key, first, last, offset))
            summary.deployments += 1

    placed = {key: place.position for key, place in index.placements.items()}
    descriptor = package_descriptor(meta, now, spans, placed, capture_methods, summary.species)
    (out_dir / "datapackage.json").write_text(json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n")
    log.info(
        "Camtrap DP written to %s: %d deployments, %d media, %d observations",
        out_dir,
        summary.deployments,
        summary.media,
        summary.observations,
    )
    return summary


class _CsvFile:
    """A CSV file with a header, opened as a context manager (UTF-8, no BOM, \\n line ends)."""

    def __init__(self, path: Path, fields: list[str]) -> None:
        self.path, self.fields = path, fields

    def __enter__(self) -> csv.DictWriter[str]:
        self.handle = self.path.open("w", newline="", encoding="utf-8")
        writer = csv.DictWriter(self.handle, self.fields, restval="", lineterminator="\n")
        writer.writeheader()
        return writer

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


def _media_row(frame: Media, deployment: str) -> dict[str, Any]:
    path = PurePosixPath(frame.path)
    return {
        "mediaID": str(frame.id),
        "deploymentID": deployment,
        "captureMethod": CAPTURE_METHOD.get(frame.trigger, "activityDetection"),
        "timestamp": local_iso(frame.captured_at, frame.utc_offset_min),
        "filePath": str(path),
        "filePublic": "false",
        "fileName": path.name,
        "fileMediatype": "image/jpeg",
        "mediaComments": f"processing {frame.process_state}" if frame.process_state != "done" else "",
    }


def _clip(value: float, low: float) -> float:
    return round(min(1.0, max(low, value)), 6)


def _media_observations(
    frame: Media, deployment: str, boxes: dict[int, HumanBoxReview]
) -> Iterator[dict[str, Any]]:
    when = local_iso(frame.captured_at, frame.utc_offset_min)
    for det in frame.detections:
        x, y = _clip(det.x, 0.0), _clip(det.y, 0.0)
        machine = {
            "observationID": f"d{det.id}",
            "deploymentID": deployment,
            "mediaID": str(frame.id),
            "eventID": str(frame.event_id) if frame.event_id is not None else "",
            "eventStart": when,
            "eventEnd": when,
            "observationLevel": "media",
            "observationType": OBSERVATION_TYPE.get(det.category, "unknown"),
            "scientificName": det.species or "",
            "count": 1,
            "bboxX": x,
            "bboxY": y,
            "bboxWidth": _clip(min(det.w, 1 - x), MIN_BOX),
            "bboxHeight": _clip(min(det.h, 1 - y), MIN_BOX),
            "classificationMethod": "machine",
            "classifiedBy": det.classifier if det.species and det.classifier else det.model,
            "classificationTimestamp": "",
            "classificationProbability": round(
                det.species_confidence
                if det.species and det.species_confidence is not None
                else det.confidence,
                4,
            ),
            "observationComments": f"{det.category}, detected by {det.model}",
        }
        yield machine
        human = boxes.get(det.id)
        if human is not None:  # a reviewer's answer for this one box, beside the machine's
            yield {
                **machine,
                "observationID": f"d{det.id}-human",
                "observationType": OBSERVATION_TYPE.get(human.category, "unknown"),
                "scientificName": human.species or "",
                "classificationMethod": "human",
                "classifiedBy": human.by,
                "classificationTimestamp": local_iso(human.at, 0),
                "classificationProbability": "",
                "observationComments": "box review",
            }


def _event_observations(
    event: Event, review: HumanReview | None, deployment: str
) -> Iterator[dict[str, Any]]:
    common = {
        "deploymentID": deployment,
        "mediaID": "",
        "eventID": str(event.id),
        "eventStart": local_iso(event.started_at, event.utc_offset_min),
        "eventEnd": local_iso(event.ended_at, event.utc_offset_min),
        "observationLevel": "event",
        "bboxX": "",
        "bboxY": "",
        "bboxWidth": "",
        "bboxHeight": "",
    }
    yield {
        **common,
        "observationID": f"e{event.id}-machine",
        "observationType": OBSERVATION_TYPE.get(event.category, "unknown"),
        "scientificName": event.species or "",
        "count": event.count if event.count >= 1 and event.category != "blank" else "",
        "classificationMethod": "machine",
        "classifiedBy": event.model or "",
        "classificationTimestamp": local_iso(event.updated_at, 0),
        "classificationProbability": round(min(1.0, max(0.0, event.confidence)), 4),
        "observationComments": "",
    }
    if review is not None:
        yield {
            **common,
            "observationID": f"e{event.id}-human",
            "observationType": OBSERVATION_TYPE.get(review.category, "unknown"),
            "scientificName": review.species or "",
            "count": review.count if review.count >= 1 else "",
            "classificationMethod": "human",
            "classifiedBy": review.by,
            "classificationTimestamp": local_iso(review.at, 0),
            "classificationProbability": "",
            "observationComments": "; ".join(p for p in (f"review: {review.action}", review.comment) if p),
        }
