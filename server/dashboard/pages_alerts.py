"""Alerts that went out, with the delivery state of each message, and the rules and recipients
(read-only, from ``[alerts]`` in the config).

The alerts engineer owns the tables (``yaguar.alerts.models``: ``Alert`` with its ``Delivery`` rows);
when that package or its tables are absent, the page says "no alerts".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, SecretStr
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, selectinload

from .core import dashboard_of
from .guard import requires

log = logging.getLogger(__name__)

ALERTS_SHOWN = 200


@dataclass
class AlertsView:
    installed: bool
    alerts: list[Any]


def read_alerts(db: Session) -> AlertsView:
    try:
        from yaguar.alerts.models import Alert
    except ImportError:
        return AlertsView(False, [])
    if "alerts" not in inspect(db.get_bind()).get_table_names():
        return AlertsView(False, [])
    alerts = list(
        db.scalars(
            select(Alert)
            .options(selectinload(Alert.deliveries))
            .order_by(Alert.id.desc())
            .limit(ALERTS_SHOWN)
        )
    )
    return AlertsView(True, alerts)


def mask_phone(number: str) -> str:
    """Enough of a number to recognise it, not enough to copy it from a screen."""
    if len(number) <= 6:
        return "•" * len(number)
    return number[:3] + "•" * (len(number) - 6) + number[-3:]


def settings_view(model: BaseModel) -> dict[str, Any]:
    """The config as plain values; secrets show as dots, never their value."""

    def plain(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "••••••"
        if isinstance(value, BaseModel):
            return {k: plain(getattr(value, k)) for k in type(value).model_fields}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(model)


@requires("viewer")
async def alerts(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    view = await dash.read(read_alerts)
    return await dash.render(request, "alerts.html", view=view)


@requires("viewer")
async def rules(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    config = dash.ctx.config.alerts
    settings = settings_view(config)
    rule_list = settings.pop("rules", None) or []
    recipients = settings.pop("recipients", None) or []
    for recipient in recipients:
        if isinstance(recipient, dict) and isinstance(recipient.get("phone"), str):
            recipient["phone"] = mask_phone(recipient["phone"])
    return await dash.render(
        request, "rules.html", settings=settings, rule_list=rule_list, recipients=recipients
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/alerts", alerts), web.get("/rules", rules)]
