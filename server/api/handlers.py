"""What every REST API handler shares: its typed parameters (aiohttp-pydantic reads them from the
annotations, and the OpenAPI document is generated from the same), refusals in one JSON shape
(``{"error": "bad_request", "detail": ...}``), database work off the event loop, and the optional
filters of the lists paged by key (events, detections, frames)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar, TypeVarTuple

from aiohttp import web
from aiohttp_pydantic.decorator import inject_params
from pydantic import ValidationError
from sqlalchemy import Select
from sqlalchemy.orm import Session

from yaguar.protocol import topics
from yaguar.protocol.messages import short_error

from ..context import StationContext
from ..ingest import MediaStore

CONTEXT = web.AppKey("station_context", StationContext)
MEDIA_STORE = web.AppKey("media_store", MediaStore)
MAX_PAGE = 500
MAX_ID = 2**62  # beyond what any row id reaches, within every database's integers

T = TypeVar("T")
Row = TypeVarTuple("Row")


def refuse(detail: str, status: type[web.HTTPException] = web.HTTPBadRequest) -> web.HTTPException:
    return status(
        text=json.dumps({"error": "bad_request", "detail": detail}), content_type="application/json"
    )


async def _invalid(exc: ValidationError, where: str) -> web.StreamResponse:
    """A parameter or body that does not fit its annotation, said in one line."""
    return web.json_response({"error": "bad_request", "detail": f"{where}: {short_error(exc)}"}, status=400)


# ``@api_handler`` on ``async def handler(request, path_param, /, query_param=...)``.
api_handler = inject_params(on_validation_error=_invalid).and_request


async def in_thread(request: web.Request, fn: Callable[[Session], T], write: bool = False) -> T:
    """Run ``fn(session)`` in a worker thread (the event loop never waits on the database); ``write``
    runs it in a transaction."""
    ctx = request.app[CONTEXT]

    def run() -> T:
        with ctx.session_factory() as session:
            if not write:
                return fn(session)
            with session.begin():
                return fn(session)

    return await asyncio.to_thread(run)


def checked_device(device: str | None) -> str | None:
    if device is not None and not topics.is_valid_device_id(device):
        raise refuse("device is not a valid device id")
    return device


def check_page(
    device: str | None, since: datetime | None, until: datetime | None, limit: int, before_id: int | None
) -> None:
    """The common filters of a list paged by key: refused with the reason when unusable."""
    checked_device(device)
    if before_id is not None and not 1 <= before_id <= MAX_ID:
        raise refuse(f"before_id must be between 1 and {MAX_ID}")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise refuse(f"{name} must include a UTC offset, e.g. 2026-11-26T02:00:00-05:00")
    if not 1 <= limit <= MAX_PAGE:
        raise refuse(f"limit must be between 1 and {MAX_PAGE}")


def page_of(
    stmt: Select[*Row],
    equal: Iterable[tuple[Any, object]],
    time: Any,
    since: datetime | None,
    until: datetime | None,
    key: Any,
    before_id: int | None,
) -> Select[*Row]:
    """``stmt`` narrowed by the filters that were given: each ``(column, value)`` in ``equal``, the
    time range ``since <= time < until``, and the page before ``before_id`` (newest first by ``key``)."""
    conditions = [column == value for column, value in equal if value]
    if since:
        conditions.append(time >= since)
    if until:
        conditions.append(time < until)
    if before_id:
        conditions.append(key < before_id)
    return stmt.where(*conditions) if conditions else stmt
