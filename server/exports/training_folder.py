"""Rangers' reviews as training data: the machine's animal boxes, cut from the stored frames, filed
under the species a person gave them, with who said so and when in ``reviews.csv``.

A box's own review wins over its event's (a peccary beside a jaguar); a box reviewed as something else
(blank, person) teaches nothing and is left out; an event confirmed or corrected to a species labels
its animal boxes. Machine answers nobody checked are never exported: the model would learn its own
mistakes. The folder is marked as crops, so training does not run the detector on them again.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from yaguar.durable import atomic_write
from yaguar.engine.classifier import crop
from yaguar.engine.decode import DecodeError, read_image
from yaguar.engine.training.dataset import CROP_MARKER
from yaguar.server.dashboard.box_review import BoxReview
from yaguar.server.dashboard.models import User
from yaguar.storage.models import Detection

from .records import ExportScope, HumanReview, iter_media, latest_reviews

log = logging.getLogger(__name__)

COLUMNS = [
    "file",
    "species",
    "source",
    "reviewer",
    "reviewed_at",
    "event_id",
    "detection_id",
    "camera",
    "captured_at",
]
LABELLING_ACTIONS = ("confirm", "correct")


@dataclass
class TrainingExport:
    crops: Counter[str] = field(default_factory=Counter)  # species -> crops written
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> boxes left out


@dataclass(frozen=True)
class Label:
    species: str
    source: str  # "box review" or "event review"
    by: str
    at: datetime


def _box_reviews(db: Session, detection_ids: list[int]) -> dict[int, tuple[BoxReview, str]]:
    if not detection_ids:
        return {}
    stmt = (
        select(BoxReview, User.username)
        .join(User, User.id == BoxReview.user_id)
        .where(BoxReview.detection_id.in_(detection_ids))
        .order_by(BoxReview.created_at, BoxReview.id)
    )
    return {review.detection_id: (review, username) for review, username in db.execute(stmt)}


def label_of(box: tuple[BoxReview, str] | None, event: HumanReview | None) -> Label | str:
    """The species a person gave this box, or the reason it teaches nothing."""
    if box is not None:
        review, by = box
        if review.category != "animal" or not review.species:
            return "box_reviewed_not_animal"
        return Label(review.species, "box review", by, review.created_at)
    if event is None:
        return "not_reviewed"
    if event.action not in LABELLING_ACTIONS or event.category != "animal" or not event.species:
        return "event_reviewed_not_animal"
    return Label(event.species, "event review", event.by, event.at)


def write_training_folder(
    db: Session, media_root: Path, out_dir: Path, scope: ExportScope | None = None
) -> TrainingExport:
    scope = scope or ExportScope()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CROP_MARKER).touch()
    events = latest_reviews(db, scope)
    result = TrainingExport()
    rows: list[dict[str, object]] = []
    for media in iter_media(db, scope, processed_only=True):
        animals: list[Detection] = [d for d in media.detections if d.category == "animal"]
        boxes = _box_reviews(db, [d.id for d in animals])
        labelled = [(d, label_of(boxes.get(d.id), events.get(media.event_id or -1))) for d in animals]
        for _, label in labelled:
            if isinstance(label, str):
                result.skipped[label] += 1
        wanted = [(d, label) for d, label in labelled if isinstance(label, Label)]
        if not wanted:
            continue
        try:
            pixels = read_image(media_root / media.path).pixels
        except DecodeError as exc:
            result.skipped["frame_unreadable"] += len(wanted)
            log.warning("review export: frame %s left out: %s", media.id, exc)
            continue
        for det, label in wanted:
            name = f"review-m{media.id}-d{det.id}.jpg"
            (out_dir / label.species).mkdir(exist_ok=True)
            box = crop(pixels, [det.x, det.y, det.w, det.h])
            atomic_write(out_dir / label.species / name, _jpeg(box), fsync=False)
            result.crops[label.species] += 1
            rows.append(
                {
                    "file": f"{label.species}/{name}",
                    "species": label.species,
                    "source": label.source,
                    "reviewer": label.by,
                    "reviewed_at": label.at.isoformat(timespec="seconds"),
                    "event_id": media.event_id,
                    "detection_id": det.id,
                    "camera": media.device_id,
                    "captured_at": media.captured_at.isoformat(timespec="seconds"),
                }
            )
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out_dir / "reviews.csv", text.getvalue().encode(), fsync=False)
    return result


def _jpeg(pixels: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise ValueError("could not encode a crop as JPEG")
    return data.tobytes()
