"""The alerts in the REST API, for the dashboard and other programs (the station's middleware asks for
the API token on everything under /api/v1): the list, one alert, and its acknowledgement. Parameters
and answers are annotated for aiohttp-pydantic, which parses the one and documents both in the
station's OpenAPI document."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp_pydantic.decorator import inject_params
from aiohttp_pydantic.oas.typing import r200, r400, r404
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from .deliveries import acknowledge
from .metrics import AlertMetrics
from .models import ALERT_STATES, Alert

MAX_PAGE = 500


class DeliveryOut(BaseModel):
    id: int
    channel: str = Field(description="twilio, gsm, webhook or log")
    recipient: str | None
    language: str
    escalation_level: int
    state: str
    attempts: int
    segments: int = Field(description="SMS segments the message costs")
    provider_sid: str | None
    provider_status: str | None
    sent_at: datetime | None
    last_error: str | None


class AlertOut(BaseModel):
    id: int
    created_at: datetime
    rule: str
    severity: str
    kind: str = Field(description="first: sent at once; summary: what followed it")
    state: str
    event_id: int | None
    last_event_id: int
    event_count: int
    device_id: str
    category: str
    species: str | None
    count: int
    confidence: float
    first_seen_at: datetime
    last_seen_at: datetime
    ack_code: str | None = Field(description="the code a ranger answers by SMS to acknowledge")
    acked_at: datetime | None
    acked_by: str | None
    escalation_level: int
    note: str | None
    deliveries: list[DeliveryOut]


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_before_id: int | None = Field(description="pass as before_id for the next (older) page")


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "created_at": alert.created_at.isoformat(),
        "rule": alert.rule,
        "severity": alert.severity,
        "kind": alert.kind,
        "state": alert.state,
        "event_id": alert.event_id,
        "last_event_id": alert.last_event_id,
        "event_count": alert.event_count,
        "device_id": alert.device_id,
        "category": alert.category,
        "species": alert.species,
        "count": alert.max_count,
        "confidence": alert.max_confidence,
        "first_seen_at": alert.first_seen_at.isoformat(),
        "last_seen_at": alert.last_seen_at.isoformat(),
        "ack_code": alert.ack_code,
        "acked_at": alert.acked_at.isoformat() if alert.acked_at else None,
        "acked_by": alert.acked_by,
        "escalation_level": alert.escalation_level,
        "note": alert.note,
        "deliveries": [
            {
                "id": d.id,
                "channel": d.channel,
                "recipient": d.recipient,
                "language": d.language,
                "escalation_level": d.escalation_level,
                "state": d.state,
                "attempts": d.attempts,
                "segments": d.segments,
                "provider_sid": d.provider_sid,
                "provider_status": d.provider_status,
                "sent_at": d.sent_at.isoformat() if d.sent_at else None,
                "last_error": d.last_error,
            }
            for d in alert.deliveries
        ],
    }


@dataclass(frozen=True)
class AlertsApi:
    sessions: sessionmaker[Session]
    metrics: AlertMetrics
    clock: Callable[[], datetime]

    async def db(self, fn: Callable[[Session], Any]) -> Any:
        def run() -> Any:
            with self.sessions.begin() as session:
                return fn(session)

        return await asyncio.to_thread(run)


ALERTS_API = web.AppKey("alerts_api", AlertsApi)


@inject_params.and_request
async def list_alerts(
    request: web.Request, state: str | None = None, limit: int = 50, before_id: int | None = None
) -> r200[AlertPage] | r400[str]:
    """Alerts, newest first, paged by key; ``state`` among pending, sent, failed, acked, suppressed
    and the other states of an alert.

    Tags: alerts
    """
    if state is not None and state not in ALERT_STATES:
        raise web.HTTPBadRequest(text=f"state must be one of {', '.join(ALERT_STATES)}")
    limit = min(max(limit, 1), MAX_PAGE)

    def query(session: Session) -> list[dict[str, Any]]:
        stmt = select(Alert).options(selectinload(Alert.deliveries)).order_by(Alert.id.desc()).limit(limit)
        if state:
            stmt = stmt.where(Alert.state == state)
        if before_id is not None:
            stmt = stmt.where(Alert.id < before_id)
        return [alert_json(a) for a in session.scalars(stmt)]

    items = await request.app[ALERTS_API].db(query)
    next_before = items[-1]["id"] if len(items) == limit else None
    return web.json_response({"items": items, "next_before_id": next_before})


@inject_params.and_request
async def get_alert(request: web.Request, alert_id: int, /) -> r200[AlertOut] | r404[str]:
    """One alert with its deliveries.

    Tags: alerts
    """

    def query(session: Session) -> dict[str, Any] | None:
        alert = session.get(Alert, alert_id)
        return alert_json(alert) if alert else None

    found = await request.app[ALERTS_API].db(query)
    if found is None:
        raise web.HTTPNotFound(text=f"no alert {alert_id}")
    return web.json_response(found)


@inject_params.and_request
async def ack_alert(request: web.Request, alert_id: int, /) -> r200[AlertOut] | r404[str]:
    """Acknowledge an alert: its escalation stops.

    Tags: alerts
    """
    api = request.app[ALERTS_API]

    def ack(session: Session) -> dict[str, Any] | None:
        alert = session.get(Alert, alert_id)
        if alert is None:
            return None
        acknowledge(session, alert, "dashboard", api.clock())
        return alert_json(alert)

    found = await api.db(ack)
    if found is None:
        raise web.HTTPNotFound(text=f"no alert {alert_id}")
    api.metrics.acks.labels("api").inc()
    return web.json_response(found)


def register(app: web.Application, api: AlertsApi) -> None:
    app[ALERTS_API] = api
    app.router.add_get("/api/v1/alerts", list_alerts)
    app.router.add_get("/api/v1/alerts/{alert_id:\\d{1,18}}", get_alert)
    app.router.add_post("/api/v1/alerts/{alert_id:\\d{1,18}}/ack", ack_alert)
