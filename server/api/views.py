"""REST API, version 1: devices, media (frames) and their images, commands and config to agents."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select

from yaguar.protocol import Command, Kind, RemoteConfig, topics
from yaguar.protocol.messages import Message, short_error
from yaguar.storage.models import Device, Media

from ..context import StationContext
from ..ingest import MediaStore

CONTEXT = web.AppKey("station_context", StationContext)
MEDIA_STORE = web.AppKey("media_store", MediaStore)
MAX_PAGE = 500


def routes() -> web.RouteTableDef:
    table = web.RouteTableDef()
    table.get("/api/v1/devices")(list_devices)
    table.get("/api/v1/media")(list_media)
    table.get("/api/v1/media/{media_id}")(get_media)
    table.get("/api/v1/media/{media_id}/image")(get_media_image)
    table.post("/api/v1/devices/{device_id}/command")(post_command)
    table.put("/api/v1/devices/{device_id}/config")(put_config)
    return table


async def _query(request: web.Request, fn: Any) -> Any:
    """Run a blocking database query off the event loop."""
    ctx = request.app[CONTEXT]

    def run() -> Any:
        with ctx.session_factory() as session:
            return fn(session)

    return await asyncio.to_thread(run)


def _bad_request(detail: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=json.dumps({"error": "bad_request", "detail": detail}), content_type="application/json"
    )


def _time_param(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise _bad_request(f"{name} must be an ISO 8601 time with offset") from None
    if value.tzinfo is None:
        raise _bad_request(f"{name} must include a UTC offset, e.g. 2026-11-26T02:00:00-05:00")
    return value


def _int_param(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_request(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise _bad_request(f"{name} must be between {low} and {high}")
    return value


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


async def list_devices(request: web.Request) -> web.Response:
    rows = await _query(request, lambda s: s.scalars(select(Device).order_by(Device.id)).all())
    return web.json_response({"items": [device_json(d) for d in rows]})


async def list_media(request: web.Request) -> web.Response:
    """Newest first, paged by key: pass ``before_id`` from the previous page's ``next_before_id``."""
    device = request.query.get("device")
    if device is not None and not topics.is_valid_device_id(device):
        raise _bad_request("device is not a valid device id")
    since, until = _time_param(request, "since"), _time_param(request, "until")
    limit = _int_param(request, "limit", 50, 1, MAX_PAGE)
    before_id = _int_param(request, "before_id", None, 1, 2**62)

    def query(session: Any) -> list[Media]:
        stmt = select(Media).order_by(Media.id.desc()).limit(limit)
        if device:
            stmt = stmt.where(Media.device_id == device)
        if since:
            stmt = stmt.where(Media.captured_at >= since)
        if until:
            stmt = stmt.where(Media.captured_at < until)
        if before_id:
            stmt = stmt.where(Media.id < before_id)
        return list(session.scalars(stmt).all())

    rows = await _query(request, query)
    next_before = rows[-1].id if len(rows) == limit else None
    return web.json_response({"items": [media_json(m) for m in rows], "next_before_id": next_before})


async def _media_or_404(request: web.Request) -> Media:
    try:
        media_id = int(request.match_info["media_id"])
    except ValueError:
        raise web.HTTPNotFound(text="no such frame") from None
    media = await _query(request, lambda s: s.get(Media, media_id))
    if media is None:
        raise web.HTTPNotFound(text="no such frame")
    return media


async def get_media(request: web.Request) -> web.Response:
    return web.json_response(media_json(await _media_or_404(request)))


async def get_media_image(request: web.Request) -> web.StreamResponse:
    media = await _media_or_404(request)
    path = request.app[MEDIA_STORE].resolve(media.path)
    if path is None:  # outside the media root, or missing on disk
        raise web.HTTPNotFound(text="image file not found")
    return web.FileResponse(
        path, headers={"Content-Type": "image/jpeg", "Cache-Control": "private, max-age=86400"}
    )


async def _agent_message(
    request: web.Request, model: type[Message], kind: Kind, retain: bool
) -> web.Response:
    device_id = request.match_info["device_id"]
    if not topics.is_valid_device_id(device_id):
        raise web.HTTPNotFound(text="no such device")
    try:
        message = model.model_validate(await request.json())
    except ValidationError as exc:
        raise _bad_request(short_error(exc)) from None
    except ValueError:
        raise _bad_request("body must be JSON") from None
    ctx = request.app[CONTEXT]
    if ctx.agents is None:
        raise web.HTTPServiceUnavailable(text="not connected to the broker")
    ctx.agents.publish(topics.topic(device_id, kind), message.to_json(), qos=1, retain=retain)
    return web.json_response({"sent": message.model_dump(mode="json", exclude_none=True)}, status=202)


async def post_command(request: web.Request) -> web.Response:
    return await _agent_message(request, Command, Kind.COMMAND, retain=False)


async def put_config(request: web.Request) -> web.Response:
    return await _agent_message(request, RemoteConfig, Kind.CONFIG, retain=True)
