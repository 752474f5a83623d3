"""The data API (bearer token): events, detections, species summaries, analysis numbers, deployments
and exports. Lists are newest first and paged by key like ``/api/v1/media``. The OpenAPI document at
``/api/v1/openapi.json`` is generated from these handlers' annotations (``oas``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r201, r400, r403, r404
from sqlalchemy import select
from sqlalchemy.orm import Session

from yaguar.engine.labelmap import shown_label
from yaguar.storage.models import Detection, Event, Media

from ..analysis import pages as analysis
from ..analysis.filters import AnalysisFilter, AnalysisFilterError
from ..dashboard.box_review import latest_box_reviews
from ..dashboard.models import Review
from ..deployments import records
from ..deployments.models import Deployment
from ..exports import bundle, megadetector
from ..exports.records import ExportScope, local_iso
from .handlers import CONTEXT, api_handler, check_page, checked_device, in_thread, page_of, refuse
from .roles import require_role
from .schemas import (
    AnalysisOut,
    ApiError,
    DeploymentList,
    DeploymentOut,
    DetectionOut,
    DetectionPage,
    EventOut,
    EventPage,
    SpeciesOut,
    SpeciesSummary,
)

Analysis = Literal["species", "abundance", "activity", "history", "uptime"]
ExportFormat = Literal["camtrap-dp.zip", "megadetector.json", "events.csv"]


@api_handler
async def list_events(
    request: web.Request,
    device: str | None = None,
    species: str | None = None,
    category: Literal["animal", "person", "vehicle", "blank"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> r200[EventPage] | r400[ApiError]:
    """Events (sightings), newest first; each with the newest human review beside the machine's answer.

    Tags: data
    """
    check_page(device, since, until, limit, before_id)

    def query(db: Session) -> list[tuple[Event, Review | None]]:
        stmt = page_of(
            select(Event).order_by(Event.id.desc()).limit(limit),
            [(Event.device_id, device), (Event.species, species), (Event.category, category)],
            Event.started_at,
            since,
            until,
            Event.id,
            before_id,
        )
        events = list(db.scalars(stmt))
        reviews: dict[int, Review] = {}
        if events:
            for review in db.scalars(
                select(Review).where(Review.event_id.in_([e.id for e in events])).order_by(Review.id)
            ):
                reviews[review.event_id] = review
        return [(e, reviews.get(e.id)) for e in events]

    rows = await in_thread(request, query)
    items = [
        EventOut(
            id=e.id,
            device_id=e.device_id,
            started_at=e.started_at,
            ended_at=e.ended_at,
            local_start=local_iso(e.started_at, e.utc_offset_min),
            utc_offset_min=e.utc_offset_min,
            category=e.category,
            species=e.species,
            count=e.count,
            confidence=round(e.confidence, 4),
            reviewed_species=r.species if r else None,
            reviewed_category=r.category if r else None,
            frame_count=e.frame_count,
            url=f"/events/{e.id}",
        )
        for e, r in rows
    ]
    page = EventPage(items=items, next_before_id=items[-1].id if len(items) == limit else None)
    return web.json_response(page.model_dump(mode="json"))


@api_handler
async def list_detections(
    request: web.Request,
    device: str | None = None,
    species: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    min_confidence: float = 0.0,
    limit: int = 100,
    before_id: int | None = None,
) -> r200[DetectionPage] | r400[ApiError]:
    """Detection boxes, newest first, with a reviewer's answer for the box when there is one.

    Tags: data
    """
    check_page(device, since, until, limit, before_id)

    def query(db: Session) -> list[DetectionOut]:
        stmt = page_of(
            select(Detection, Media.device_id, Media.captured_at, Media.event_id)
            .join(Media, Media.id == Detection.media_id)
            .where(Detection.confidence >= min_confidence)
            .order_by(Detection.id.desc())
            .limit(limit),
            [(Media.device_id, device), (Detection.species, species)],
            Media.captured_at,
            since,
            until,
            Detection.id,
            before_id,
        )
        rows = list(db.execute(stmt))
        boxes = latest_box_reviews(db, [row[0].id for row in rows])
        return [
            DetectionOut(
                id=d.id,
                media_id=d.media_id,
                event_id=event_id,
                device_id=device_id,
                captured_at=captured,
                category=d.category,
                label=shown_label(d.category, d.species),
                confidence=round(d.confidence, 4),
                bbox=[round(v, 6) for v in (d.x, d.y, d.w, d.h)],
                species=d.species,
                species_confidence=d.species_confidence,
                reviewed_species=boxes[d.id].species if d.id in boxes else None,
                model=d.model,
            )
            for d, device_id, captured, event_id in rows
        ]

    items = await in_thread(request, query)
    page = DetectionPage(items=items, next_before_id=items[-1].id if len(items) == limit else None)
    return web.json_response(page.model_dump(mode="json"))


def _filter(start: date | None, end: date | None, camera: str | None, species: str | None) -> AnalysisFilter:
    query = {"from": start.isoformat() if start else "", "to": end.isoformat() if end else ""}
    query |= {"camera": camera or "", "species": species or ""}
    try:
        return AnalysisFilter.from_query(query)
    except AnalysisFilterError as exc:
        raise refuse(str(exc)) from None


@api_handler
async def species_summary(
    request: web.Request, start: date | None = None, end: date | None = None, camera: str | None = None
) -> r200[SpeciesSummary] | r400[ApiError]:
    """Species detected in a period (local days, inclusive; the last 90 days by default): detections,
    individuals and the cameras that saw each.

    Tags: analysis
    """
    flt = _filter(start, end, camera, None)
    result = await in_thread(request, lambda db: analysis.compute(db, "species", flt, "en", with_chart=False))
    found: dict[str, SpeciesOut] = {}
    for row in result.table.rows:
        cam, name, events, individuals = str(row[0]), str(row[1]), int(row[2] or 0), int(row[3] or 0)
        item = found.setdefault(name, SpeciesOut(species=name, detections=0, individuals=0, cameras=[]))
        item.detections += events
        item.individuals += individuals
        item.cameras.append(cam)
    items = sorted(found.values(), key=lambda s: -s.detections)
    body = SpeciesSummary(start=flt.start.isoformat(), end=flt.end.isoformat(), items=items)
    return web.json_response(body.model_dump(mode="json"))


@api_handler
async def analysis_numbers(
    request: web.Request,
    name: Analysis,
    /,
    start: date | None = None,
    end: date | None = None,
    camera: str | None = None,
    species: str | None = None,
) -> r200[AnalysisOut] | r400[ApiError]:
    """The numbers of one analysis page (species, abundance, activity, history, uptime), the same as its
    CSV download. Null cells are "no data" (no effort in the period), never a division by zero.

    Tags: analysis
    """
    flt = _filter(start, end, camera, species)
    result = await in_thread(request, lambda db: analysis.compute(db, name, flt, "en", with_chart=False))
    body = AnalysisOut(
        analysis=name,
        start=flt.start.isoformat(),
        end=flt.end.isoformat(),
        camera=flt.camera,
        species=result.species or flt.species,
        columns=[c.replace(" ", "_").replace("-", "_").lower() for c in result.table.columns],
        rows=result.table.records(),
        summary=result.summary,
    )
    return web.json_response(body.model_dump(mode="json"))


def _deployment(dep: Deployment) -> DeploymentOut:
    return DeploymentOut.model_validate(dep, from_attributes=True)


@api_handler
async def list_deployments(request: web.Request, device_id: str, /) -> r200[DeploymentList] | r404[ApiError]:
    """Deployments of one camera, oldest first.

    Tags: deployments
    """
    deps = await in_thread(request, lambda db: records.deployments_of(db, device_id))
    body = DeploymentList(items=[_deployment(d) for d in deps])
    return web.json_response(body.model_dump(mode="json"))


async def _deployment_change(
    request: web.Request, change: Callable[[Session, Any], Deployment]
) -> web.Response:
    require_role(request, "admin")
    try:
        given = records.parse(await request.json())
    except records.DeploymentError as exc:
        raise refuse(str(exc)) from None
    except ValueError:
        raise refuse("the body must be a JSON object") from None
    try:
        dep = await in_thread(request, lambda db: _deployment(change(db, given)), write=True)
    except records.DeploymentError as exc:
        raise refuse(str(exc)) from None
    return web.json_response(dep.model_dump(mode="json"), status=201 if request.method == "POST" else 200)


@api_handler
async def add_deployment(
    request: web.Request, device_id: str, /
) -> r201[DeploymentOut] | r400[ApiError] | r403[ApiError]:
    """Add a deployment to a camera (admin token). Body: latitude, longitude, start (ISO 8601 with its
    offset), and optionally end, uncertainty_m, site, habitat, camera_model, camera_height_m, bait,
    comments. Refused: a position out of range, an end before the start, an overlap with another
    deployment of the camera.

    Tags: deployments
    """
    return await _deployment_change(request, lambda db, given: records.add(db, device_id, given, "api"))


@api_handler
async def change_deployment(
    request: web.Request, deployment_id: int, /
) -> r200[DeploymentOut] | r400[ApiError] | r403[ApiError]:
    """Change a deployment (admin token); the body is a whole deployment, as for adding one.

    Tags: deployments
    """
    return await _deployment_change(
        request, lambda db, given: records.update(db, deployment_id, given, "api")
    )


@api_handler
async def export(
    request: web.Request,
    fmt: ExportFormat,
    /,
    start: date | None = None,
    end: date | None = None,
    device: str | None = None,
) -> r200[bytes] | r400[ApiError] | r403[ApiError]:
    """An export (reviewer or admin token): Camtrap DP (zip), MegaDetector batch output (JSON), events
    (CSV), optionally limited to UTC days and one camera.

    Tags: exports
    """
    require_role(request, "reviewer")
    scope = ExportScope(
        since=datetime.combine(start, time(), UTC) if start else None,
        until=datetime.combine(end + timedelta(days=1), time(), UTC) if end else None,
        device=checked_device(device),
    )
    meta = request.app[CONTEXT].config.dashboard.export
    disposition = {"Content-Disposition": f'attachment; filename="yaguar-{fmt}"'}
    if fmt == "camtrap-dp.zip":
        body = await in_thread(request, lambda db: bundle.camtrap_zip(db, meta, scope))
        return web.Response(body=body, content_type="application/zip", headers=disposition)
    if fmt == "megadetector.json":
        threshold = megadetector.detection_threshold(request.app[CONTEXT].config.pipeline)
        body = await in_thread(request, lambda db: bundle.megadetector_json(db, scope, threshold))
        return web.Response(body=body, content_type="application/json", headers=disposition)
    text = await in_thread(request, lambda db: bundle.events_csv(db, scope))
    return web.Response(text=text, content_type="text/csv", charset="utf-8", headers=disposition)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/events", list_events),
        web.get("/api/v1/detections", list_detections),
        web.get("/api/v1/species", species_summary),
        web.get("/api/v1/analysis/{name:species|abundance|activity|history|uptime}", analysis_numbers),
        web.get("/api/v1/devices/{device_id}/deployments", list_deployments),
        web.post("/api/v1/devices/{device_id}/deployments", add_deployment),
        web.put(r"/api/v1/deployments/{deployment_id:\d{1,18}}", change_deployment),
        web.get(r"/api/v1/exports/{fmt:camtrap-dp\.zip|megadetector\.json|events\.csv}", export),
    ]
