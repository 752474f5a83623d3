"""Alerts that went out, with the delivery state of each message, and the rules and recipients
(read-only, from ``[alerts]`` in the config).

The alerts engineer owns the tables (``yaguar.alerts.models``: ``Alert`` with its ``Delivery`` rows);
when that package or its tables are absent, the page says "no alerts".
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, SecretStr
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, selectinload

from yaguar.alerts.test_sms import TestSmsError

from .auth import FORM_KEY
from .core import dashboard_of
from .guard import requires
from .refusal import N_

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


TEST_OUTCOMES = {
    "sent": N_("accepted"),
    "retry": N_("down, nothing sent"),
    "failed": N_("refused"),
    "unknown": N_("no answer: it may have gone out"),
    "not configured": N_("not configured"),
}


@dataclass
class TestSmsView:
    allowed: bool
    channels: list[str]
    number: str = ""
    error: str | None = None
    attempts: list[Any] = field(default_factory=list)


async def _alerts_page(
    request: web.Request, test: TestSmsView | None = None, status: int = 200
) -> web.StreamResponse:
    dash = dashboard_of(request)
    view = await dash.read(read_alerts)
    me = await dash.current_user(request)
    if test is None:
        allowed = dash.ctx.send_test_sms is not None and me is not None and me.role == "admin"
        test = TestSmsView(allowed, dash.ctx.config.alerts.sms_route())
    return await dash.render(
        request, "alerts.html", status=status, view=view, test_sms=test, TEST_OUTCOMES=TEST_OUTCOMES
    )


@requires("viewer")
async def alerts(request: web.Request) -> web.StreamResponse:
    return await _alerts_page(request)


@requires("admin")
async def test_sms(request: web.Request) -> web.StreamResponse:
    """A test SMS from the Alerts page, through the running station's channels (it holds the modem)."""
    dash = dashboard_of(request)
    form = request[FORM_KEY]
    number = str(form.get("number") or "").strip()[:20]
    channel = str(form.get("channel") or "") or None
    view = TestSmsView(True, dash.ctx.config.alerts.sms_route(), number)
    send = dash.ctx.send_test_sms
    if send is None:
        view.error = (await dash.gettext(request))("Alerts are not enabled on this station.")
        return await _alerts_page(request, view, status=409)
    try:
        view.attempts = await asyncio.to_thread(send, number, channel)
    except TestSmsError as exc:
        dash.metrics.refused.labels("bad_input").inc()
        log.info("test SMS refused: %s", exc)
        view.error = (await dash.gettext(request))(exc.msgid) % exc.params
        return await _alerts_page(request, view, status=400)
    log.info(
        "test SMS to %s: %s", mask_phone(number), ", ".join(f"{a.channel} {a.outcome}" for a in view.attempts)
    )
    return await _alerts_page(request, view)


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
    return [web.get("/alerts", alerts), web.post("/alerts/test", test_sms), web.get("/rules", rules)]
