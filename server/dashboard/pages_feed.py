"""The feed of events: filters, pages by key, and the live stream that adds new events without reload."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from sqlalchemy.orm import Session

from .core import dashboard_of
from .guard import requires
from .queries import CATEGORIES, REVIEW_STATES, FeedFilter, FeedPage, FilterError, feed_page, filter_choices

log = logging.getLogger(__name__)

CHOICES_TTL_S = 30.0  # the camera and species lists change rarely; no need to read them on every view


async def cached_choices(request: web.Request) -> dict[str, list[str]]:
    """The cameras and species the filters offer (the feed's and the analysis pages')."""
    dash = dashboard_of(request)
    cached = dash.choices_cache
    if cached is not None and time.monotonic() - cached[0] < CHOICES_TTL_S:
        return cached[1]
    choices = await dash.read(filter_choices)
    dash.choices_cache = (time.monotonic(), choices)
    return choices


async def _parse(request: web.Request) -> FeedFilter:
    try:
        return FeedFilter.from_query(request.query)
    except FilterError as exc:
        raise await dashboard_of(request).refuse(request, exc, "feed filter") from None


@requires("viewer")
async def feed(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    flt = (await _parse(request)).without_ids()
    cursor = request.query.get("before") or None

    def load(db: Session) -> FeedPage:
        return feed_page(db, flt, cursor, dash.config.page_size)

    try:
        page = await dash.read(load)
    except FilterError as exc:
        raise await dash.refuse(request, exc, "feed cursor") from None
    next_url = f"/?{flt.query_string(before=page.next_cursor)}" if page.next_cursor else None
    return await dash.render(
        request,
        "feed.html",
        page=page,
        flt=flt,
        choices=await cached_choices(request),
        categories=CATEGORIES,
        review_states=REVIEW_STATES,
        next_url=next_url,
        first_page=cursor is None,
        filter_qs=flt.query_string(),
    )


@requires("viewer", data=True)
async def feed_rows(request: web.Request) -> web.StreamResponse:
    """Rows for the given event ids that pass the page's filters: what the live feed inserts."""
    dash = dashboard_of(request)
    flt = await _parse(request)
    if not flt.ids:
        return web.Response(text="", content_type="text/html")
    page = await dash.read(lambda db: feed_page(db, flt, None, len(flt.ids)))
    return await dash.render(request, "_feed_rows.html", rows=page.rows)


@requires("viewer", data=True)
async def feed_stream(request: web.Request) -> web.StreamResponse:
    return await dashboard_of(request).live.stream(request)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/", feed),
        web.get("/feed/rows", feed_rows),
        web.get("/feed/stream", feed_stream),
    ]
