"""One event: its frames with the detection boxes drawn, the machine's answer, the reviews, and the
review form (reviewers and admins)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from yaguar.storage.models import Device, Event, Media

from .box_review import BoxReview, latest_box_reviews
from .core import dashboard_of, posted
from .guard import requires
from .models import REVIEW_ACTIONS, Review
from .pages_clip import ClipView, clip_of
from .queries import CATEGORIES, event_reviews
from .refusal import N_, RefusalError
from .species import known_species
from .thumbs import Shown, shown

log = logging.getLogger(__name__)

MAX_COUNT = 1000


@dataclass
class EventView:
    event: Event
    device: Device | None
    frames: list[Media]
    reviews: list[tuple[Review, str]]
    box_reviews: dict[int, BoxReview] = field(default_factory=dict)  # newest per detection id
    clip: ClipView | None = None  # the clip the frames were sampled from, played with their boxes
    shown: dict[int, Shown] = field(default_factory=dict)  # by media id: how each frame is shown


class ReviewError(RefusalError):
    """A review that cannot be stored; the message says why."""


@requires("viewer")
async def event_page(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    event_id = int(request.match_info["event_id"])

    def load(db: Session) -> EventView | None:
        event = db.get(Event, event_id)
        if event is None:
            return None
        frames = list(
            db.scalars(
                select(Media)
                .where(Media.event_id == event_id)
                .options(selectinload(Media.detections))
                .order_by(Media.captured_at, Media.id)
                .limit(200)
            )
        )
        boxes = latest_box_reviews(db, [d.id for frame in frames for d in frame.detections])
        view = EventView(event, db.get(Device, event.device_id), frames, event_reviews(db, event_id), boxes)
        view.clip = clip_of(frames, dash.thumbs.media_root)
        for frame in frames:
            path = dash.thumbs.frame_path(frame.path)
            view.shown[frame.id] = shown(path, frame.width, frame.height)
        return view

    view = await dash.read(load)
    if view is None:
        raise web.HTTPNotFound(text="no such event")
    return await dash.render(
        request,
        "event.html",
        view=view,
        categories=CATEGORIES,
        species_choices=known_species(),
        actions=REVIEW_ACTIONS,
    )


def parse_review(form: Any, event: Event) -> dict[str, Any]:
    """The review to store, from the form; the machine's answer is copied for a plain confirmation."""
    action = str(form.get("action") or "")
    if action not in REVIEW_ACTIONS:
        raise ReviewError(N_("unknown review action %(action)s"), action=action[:20])
    comment = str(form.get("comment") or "").strip()[:2000] or None
    if action == "confirm":
        return {
            "action": action,
            "category": event.category,
            "species": event.species,
            "count": event.count,
            "comment": comment,
        }
    if action in ("blank", "false_positive"):
        return {"action": action, "category": "blank", "species": None, "count": 0, "comment": comment}
    category = str(form.get("category") or "animal")
    if category not in CATEGORIES or category == "blank":
        raise ReviewError(
            N_("a correction needs animal, person or vehicle, not %(value)s"), value=category[:20]
        )
    species = str(form.get("species") or "").strip() or None
    if species is not None and (len(species) > 120 or not all(c.isalpha() or c in " .-" for c in species)):
        raise ReviewError(N_("the species must be a scientific name (letters, spaces, dots, hyphens)"))
    if category == "animal" and species is None:
        raise ReviewError(N_("a corrected animal needs its species"))
    try:
        count = int(str(form.get("count") or "1"))
    except ValueError:
        raise ReviewError(N_("the count must be a whole number")) from None
    if not 1 <= count <= MAX_COUNT:
        raise ReviewError(N_("the count must be between 1 and %(max)d"), max=MAX_COUNT)
    return {"action": action, "category": category, "species": species, "count": count, "comment": comment}


@requires("reviewer")
async def review_submit(request: web.Request) -> web.StreamResponse:
    dash, user, form = await posted(request)
    event_id = int(request.match_info["event_id"])

    def store(db: Session) -> str | None:
        event = db.get(Event, event_id)
        if event is None:
            return "missing"
        review = Review(event_id=event_id, user_id=user.id, **parse_review(form, event))
        db.add(review)
        return review.action

    try:
        action = await dash.write(store)
    except ReviewError as exc:
        raise await dash.refuse(request, exc, f"review of event {event_id} by {user.username}") from None
    if action == "missing":
        raise web.HTTPNotFound(text="no such event")
    dash.metrics.reviews.labels(action).inc()
    log.info("%s reviewed event %d: %s", user.username, event_id, action)
    dash.live.events_committed([event_id])  # open feeds refresh the row
    raise web.HTTPSeeOther(f"/events/{event_id}")


def routes() -> list[web.RouteDef]:
    return [
        web.get(r"/events/{event_id:\d{1,18}}", event_page),
        web.post(r"/events/{event_id:\d{1,18}}/review", review_submit),
    ]
