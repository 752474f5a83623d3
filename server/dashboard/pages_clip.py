"""A clip on its event's page: the video, with the boxes of its analysed frames drawn as it plays.

Only the sampled frames were analysed, so while the clip plays the boxes of the latest analysed frame
at or before the playing time are shown (``static/clip.js``). The clip file is served by its device
and clip id, only when the clip store has joined it, only from under the media root.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from yaguar.protocol.messages import ID_PATTERN
from yaguar.protocol.topics import DEVICE_ID_PATTERN
from yaguar.storage.models import Media

from ..clip_store import joined_clip
from .core import dashboard_of
from .guard import requires

log = logging.getLogger(__name__)

_CLIP_FRAME = re.compile(r"^(?P<clip>[A-Za-z0-9_.:-]{1,52})\.f(?P<frame>\d{1,9})$")


@dataclass(frozen=True)
class ClipFrame:
    time_s: float  # from the start of the clip
    media: Media


@dataclass(frozen=True)
class ClipView:
    url: str
    width: int
    height: int
    frames: list[ClipFrame]  # the analysed frames, in time order


def clip_of(frames: list[Media], media_root: Path) -> ClipView | None:
    """The clip an event's frames were sampled from, when they were (and it is joined)."""
    sampled = [(m, _CLIP_FRAME.match(m.capture_id)) for m in frames]
    found = [(m, match["clip"]) for m, match in sampled if match]
    if not found:
        return None
    first, clip_id = found[0]
    if joined_clip(media_root, first.device_id, clip_id) is None:
        return None
    mine = sorted((m for m, c in found if c == clip_id), key=lambda m: m.captured_at)
    start = mine[0].captured_at
    return ClipView(
        url=f"/clips/{first.device_id}/{clip_id}.mp4",
        width=first.width,
        height=first.height,
        frames=[ClipFrame(round((m.captured_at - start).total_seconds(), 3), m) for m in mine],
    )


@requires("viewer")
async def clip_file(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    device, clip_id = request.match_info["device"], request.match_info["clip_id"]
    if not (re.fullmatch(DEVICE_ID_PATTERN, device) and re.fullmatch(ID_PATTERN, clip_id)):
        raise web.HTTPNotFound(text="no such clip")
    relative = joined_clip(dash.thumbs.media_root, device, clip_id)
    path = dash.thumbs.frame_path(relative) if relative else None
    if path is None:
        dash.metrics.refused.labels("not_found").inc()
        log.info("clip %s of %s is not joined or its file is missing", clip_id, device)
        raise web.HTTPNotFound(text="no such clip")
    # FileResponse answers Range requests: the browser seeks in the clip without loading all of it.
    return web.FileResponse(
        path, headers={"Content-Type": "video/mp4", "Cache-Control": "private, max-age=86400"}
    )


def routes() -> list[web.RouteDef]:
    return [web.get(r"/clips/{device}/{clip_id}.mp4", clip_file)]
