"""Review of one box: in a mixed group (a peccary beside a jaguar) a reviewer corrects the species of a
single detection, not the whole event. Stored beside the machine's answer like event reviews; the
newest review of a box is the human answer."""

from __future__ import annotations

import logging
from datetime import datetime

from aiohttp import web
from sqlalchemy import ForeignKey, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from yaguar.storage.base import Base, UTCDateTime, utcnow
from yaguar.storage.models import Detection, Media

from .core import posted
from .guard import requires
from .queries import CATEGORIES
from .refusal import N_, RefusalError

log = logging.getLogger(__name__)


class BoxReview(Base):
    __tablename__ = "box_reviews"
    __table_args__ = (Index("ix_box_reviews_detection_created", "detection_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    detection_id: Mapped[int] = mapped_column(ForeignKey("detections.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    category: Mapped[str] = mapped_column(String(16), doc="animal, person, vehicle or blank, as reviewed")
    species: Mapped[str | None] = mapped_column(String(120), doc="scientific name, as reviewed")


class BoxReviewError(RefusalError):
    """A box review that cannot be stored."""


def parse_box_review(form: object) -> tuple[str, str | None]:
    get = getattr(form, "get")  # noqa: B009 - a MultiDict or a dict
    category = str(get("category") or "animal")
    if category not in CATEGORIES:
        raise BoxReviewError(N_("unknown category %(value)s"), value=category[:20])
    species = str(get("species") or "").strip() or None
    if species is not None and (len(species) > 120 or not all(c.isalpha() or c in " .-" for c in species)):
        raise BoxReviewError(N_("the species must be a scientific name (letters, spaces, dots, hyphens)"))
    if category == "animal" and species is None:
        raise BoxReviewError(N_("a corrected animal needs its species"))
    return category, species if category == "animal" else None


def latest_box_reviews(db: Session, detection_ids: list[int]) -> dict[int, BoxReview]:
    """The newest review of each of these boxes."""
    if not detection_ids:
        return {}
    latest: dict[int, BoxReview] = {}
    stmt = (
        select(BoxReview)
        .where(BoxReview.detection_id.in_(detection_ids))
        .order_by(BoxReview.created_at, BoxReview.id)
    )
    for review in db.scalars(stmt):
        latest[review.detection_id] = review
    return latest


@requires("reviewer")
async def review_box(request: web.Request) -> web.StreamResponse:
    dash, user, form = await posted(request)
    detection_id = int(request.match_info["detection_id"])

    def store(db: Session) -> int | None:
        detection = db.get(Detection, detection_id)
        if detection is None:
            return None
        category, species = parse_box_review(form)
        db.add(BoxReview(detection_id=detection_id, user_id=user.id, category=category, species=species))
        media = db.get(Media, detection.media_id)
        return media.event_id if media is not None else None

    try:
        event_id = await dash.write(store)
    except BoxReviewError as exc:
        raise await dash.refuse(request, exc, f"review of box {detection_id} by {user.username}") from None
    if event_id is None:
        raise web.HTTPNotFound(text="no such box")
    dash.metrics.reviews.labels("box").inc()
    log.info("%s reviewed box %d of event %d", user.username, detection_id, event_id)
    raise web.HTTPSeeOther(f"/events/{event_id}#box-{detection_id}")


def routes() -> list[web.RouteDef]:
    return [web.post(r"/boxes/{detection_id:\d{1,18}}/review", review_box)]
