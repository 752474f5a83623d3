"""Frames and thumbnails, by media id: only ids in the database, only files under the media root."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import select

from yaguar.storage.models import Media

from .core import dashboard_of
from .guard import requires

log = logging.getLogger(__name__)

CACHE = "private, max-age=86400, immutable"  # a stored frame never changes under its id


async def _stored_path(request: web.Request) -> tuple[int, str]:
    dash = dashboard_of(request)
    media_id = int(request.match_info["media_id"])
    path = await dash.read(lambda db: db.scalar(select(Media.path).where(Media.id == media_id)))
    if path is None:
        dash.metrics.refused.labels("not_found").inc()
        log.info("media %d is not in the database", media_id)
        raise web.HTTPNotFound(text="no such frame")
    return media_id, path


@requires("viewer")
async def frame(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    media_id, relative = await _stored_path(request)
    path = dash.thumbs.frame_path(relative)
    if path is None:
        dash.metrics.refused.labels("not_found").inc()
        log.info("media %d: file %r missing or outside the media root", media_id, relative)
        raise web.HTTPNotFound(text="no such frame")
    return web.FileResponse(path, headers={"Cache-Control": CACHE, "Content-Type": "image/jpeg"})


@requires("viewer")
async def thumbnail(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    media_id, relative = await _stored_path(request)
    path = await asyncio.to_thread(dash.thumbs.get, media_id, relative)
    if path is None:
        dash.metrics.refused.labels("not_found").inc()
        raise web.HTTPNotFound(text="no thumbnail for this frame")
    return web.FileResponse(path, headers={"Cache-Control": CACHE, "Content-Type": "image/jpeg"})


def routes() -> list[web.RouteDef]:
    return [
        web.get(r"/media/{media_id:\d{1,18}}", frame),
        web.get(r"/media/{media_id:\d{1,18}}/thumb", thumbnail),
    ]
