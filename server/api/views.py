"""REST API, version 1: devices, media (frames) and their images, commands and config to agents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r202, r400, r404, r503
from sqlalchemy import select

from yaguar.protocol import Command, Kind, RemoteConfig, topics
from yaguar.protocol.messages import Message
from yaguar.storage.models import Device, Media

from .handlers import CONTEXT, MEDIA_STORE, api_handler, check_page, in_thread, page_of
from .schemas import ApiError, DeviceList, MediaOut, MediaPage, Sent


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/devices", list_devices),
        web.get("/api/v1/media", list_media),
        web.get(r"/api/v1/media/{media_id:\d{1,18}}", get_media),
        web.get(r"/api/v1/media/{media_id:\d{1,18}}/image", get_media_image),
        web.post("/api/v1/devices/{device_id}/command", post_command),
        web.put("/api/v1/devices/{device_id}/config", put_config),
    ]


def device_json(device: Device) -> dict[str, Any]:
    return {
        "id": device.id,
        "name": device.name,
        "registered": device.registered,
        "revoked": device.revoked,
        "status": device.status,
        "status_at": device.status_at.isoformat() if device.status_at else None,
        "first_seen": device.first_seen.isoformat() if device.first_seen else None,
        "last_seen": device.last_seen.isoformat() if device.last_seen else None,
        "last_heartbeat": device.last_heartbeat,
    }


def media_json(media: Media) -> dict[str, Any]:
    return {
        "id": media.id,
        "device_id": media.device_id,
        "seq": media.seq,
        "capture_id": media.capture_id,
        "agent_event_id": media.agent_event_id,
        "burst_index": media.burst_index,
        "burst_size": media.burst_size,
        "trigger": media.trigger,
        "captured_at": media.captured_at.isoformat(),
        "utc_offset_min": media.utc_offset_min,
        "received_at": media.received_at.isoformat(),
        "sha256": media.sha256,
        "size": media.size,
        "width": media.width,
        "height": media.height,
        "process_state": media.process_state,
        "process_note": media.process_note,
        "event_id": media.event_id,
        "image_url": f"/api/v1/media/{media.id}/image",
    }


@api_handler
async def list_devices(request: web.Request) -> r200[DeviceList]:
    """Every camera the station knows, with its state and its last heartbeat.

    Tags: devices
    """
    rows = await in_thread(request, lambda s: s.scalars(select(Device).order_by(Device.id)).all())
    return web.json_response({"items": [device_json(d) for d in rows]})


@api_handler
async def list_media(
    request: web.Request,
    device: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> r200[MediaPage] | r400[ApiError]:
    """Frames, newest first, paged by key: pass ``before_id`` from the previous page's
    ``next_before_id``.

    Tags: media
    """
    check_page(device, since, until, limit, before_id)
    stmt = page_of(
        select(Media).order_by(Media.id.desc()).limit(limit),
        [(Media.device_id, device)],
        Media.captured_at,
        since,
        until,
        Media.id,
        before_id,
    )
    rows = await in_thread(request, lambda s: list(s.scalars(stmt)))
    next_before = rows[-1].id if len(rows) == limit else None
    return web.json_response({"items": [media_json(m) for m in rows], "next_before_id": next_before})


async def _media_or_404(request: web.Request, media_id: int) -> Media:
    media = await in_thread(request, lambda s: s.get(Media, media_id))
    if media is None:
        raise web.HTTPNotFound(text="no such frame")
    return media


@api_handler
async def get_media(request: web.Request, media_id: int, /) -> r200[MediaOut] | r404[str]:
    """One frame.

    Tags: media
    """
    return web.json_response(media_json(await _media_or_404(request, media_id)))


@api_handler
async def get_media_image(request: web.Request, media_id: int, /) -> r200[bytes] | r404[str]:
    """The JPEG of one frame.

    Tags: media
    """
    media = await _media_or_404(request, media_id)
    path = request.app[MEDIA_STORE].resolve(media.path)
    if path is None:  # outside the media root, or missing on disk
        raise web.HTTPNotFound(text="image file not found")
    return web.FileResponse(
        path, headers={"Content-Type": "image/jpeg", "Cache-Control": "private, max-age=86400"}
    )


def _publish(
    request: web.Request, device_id: str, message: Message, kind: Kind, retain: bool
) -> web.Response:
    if not topics.is_valid_device_id(device_id):
        raise web.HTTPNotFound(text="no such device")
    ctx = request.app[CONTEXT]
    if ctx.agents is None:
        raise web.HTTPServiceUnavailable(text="not connected to the broker")
    ctx.agents.publish(topics.topic(device_id, kind), message.to_json(), qos=1, retain=retain)
    return web.json_response({"sent": message.model_dump(mode="json", exclude_none=True)}, status=202)


@api_handler
async def post_command(
    request: web.Request, device_id: str, /, command: Command
) -> r202[Sent] | r400[ApiError] | r404[str] | r503[str]:
    """Send a command to a camera now (not kept for a camera that is offline), e.g. take a burst.

    Tags: devices
    """
    return _publish(request, device_id, command, Kind.COMMAND, retain=False)


@api_handler
async def put_config(
    request: web.Request, device_id: str, /, config: RemoteConfig
) -> r202[Sent] | r400[ApiError] | r404[str] | r503[str]:
    """Settings for a camera, kept by the broker (retained) until the camera comes to fetch them.

    Tags: devices
    """
    return _publish(request, device_id, config, Kind.CONFIG, retain=True)
