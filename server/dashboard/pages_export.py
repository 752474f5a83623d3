"""Downloads of the standard exports: Camtrap DP (zip), MegaDetector batch output (JSON), events CSV."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

from aiohttp import web

from yaguar.server.exports import bundle, megadetector
from yaguar.server.exports.records import ExportScope

from .core import dashboard_of
from .guard import requires
from .queries import FilterError, filter_choices, parse_day

log = logging.getLogger(__name__)


async def _scope(request: web.Request) -> ExportScope:
    try:
        since = parse_day(request.query.get("from") or None, "from")
        until = parse_day(request.query.get("to") or None, "to")
    except FilterError as exc:
        dash = dashboard_of(request)
        dash.metrics.refused.labels("bad_input").inc()
        log.info("export range refused: %s", exc)
        raise await dash.bad_request(request, exc) from None
    camera = (request.query.get("camera") or "").strip()[:63] or None
    return ExportScope(
        since=datetime.combine(since, time(), UTC) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), UTC) if until else None,
        device=camera,
    )


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@requires("viewer")
async def export_page(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)

    choices = await dash.read(filter_choices)
    return await dash.render(request, "export.html", cameras=choices["cameras"])


@requires("viewer")
async def camtrap_zip(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    scope = await _scope(request)
    data = await dash.read(lambda db: bundle.camtrap_zip(db, dash.config.export, scope))
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return web.Response(
        body=data, content_type="application/zip", headers=_attachment(f"yaguar-camtrap-dp-{stamp}.zip")
    )


@requires("viewer")
async def megadetector_json(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    scope = await _scope(request)
    threshold = megadetector.detection_threshold(dash.ctx.config.pipeline)
    body = await dash.read(lambda db: bundle.megadetector_json(db, scope, threshold))
    return web.Response(
        body=body, content_type="application/json", headers=_attachment("yaguar-megadetector.json")
    )


@requires("viewer")
async def events_csv(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    scope = await _scope(request)
    text = await dash.read(lambda db: bundle.events_csv(db, scope))
    return web.Response(
        text=text, content_type="text/csv", charset="utf-8", headers=_attachment("yaguar-events.csv")
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/export", export_page),
        web.get("/export/camtrap-dp.zip", camtrap_zip),
        web.get("/export/megadetector.json", megadetector_json),
        web.get("/export/events.csv", events_csv),
    ]
