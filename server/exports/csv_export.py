"""A plain CSV of events, one row each: the machine's answer and, beside it, the newest human review."""

from __future__ import annotations

import csv
from typing import TextIO

from sqlalchemy.orm import Session

from .records import ExportScope, devices, iter_events, latest_reviews, local_iso

FIELDS = [
    "event_id",
    "camera",
    "camera_name",
    "started_at",
    "ended_at",
    "frames",
    "machine_category",
    "machine_species",
    "machine_count",
    "machine_confidence",
    "model",
    "review",
    "human_category",
    "human_species",
    "human_count",
    "reviewed_by",
    "reviewed_at",
    "final_category",
    "final_species",
    "final_count",
]


def write_events_csv(db: Session, out: TextIO, scope: ExportScope | None = None) -> int:
    scope = scope or ExportScope()
    names = {d.id: d.name or "" for d in devices(db).values()}
    reviews = latest_reviews(db, scope)
    writer = csv.DictWriter(out, FIELDS, lineterminator="\n")
    writer.writeheader()
    rows = 0
    for event in iter_events(db, scope):
        review = reviews.get(event.id)
        final = (
            (review.category, review.species, review.count)
            if review
            else (event.category, event.species, event.count)
        )
        writer.writerow(
            {
                "event_id": event.id,
                "camera": event.device_id,
                "camera_name": names.get(event.device_id, ""),
                "started_at": local_iso(event.started_at, event.utc_offset_min),
                "ended_at": local_iso(event.ended_at, event.utc_offset_min),
                "frames": event.frame_count,
                "machine_category": event.category,
                "machine_species": event.species or "",
                "machine_count": event.count,
                "machine_confidence": round(event.confidence, 4),
                "model": event.model or "",
                "review": review.action if review else "",
                "human_category": review.category if review else "",
                "human_species": (review.species or "") if review else "",
                "human_count": review.count if review else "",
                "reviewed_by": review.by if review else "",
                "reviewed_at": local_iso(review.at, 0) if review else "",
                "final_category": final[0],
                "final_species": final[1] or "",
                "final_count": final[2],
            }
        )
        rows += 1
    return rows
