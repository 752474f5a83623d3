"""HTTP routes of alerts.

* ``POST /alerts/twilio/status``: Twilio's delivery-status callback; ``X-Twilio-Signature`` is checked
  with the library's ``RequestValidator`` and a forgery gets 403.
* ``POST /alerts/twilio/sms``: a ranger's reply; ``OK <code>`` from a known recipient acknowledges the
  alert and stops its escalation. Signed like the callback.
* ``/api/v1/alerts``: in ``api``.
* ``GET /e/{event_id}``: the short link in messages, redirected to the dashboard's event page.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from yaguar.storage.base import utcnow

from . import api
from .config import AlertsConfig
from .deliveries import refresh_state
from .inbound import ReplyVerdict, handle_reply
from .metrics import AlertMetrics
from .models import Delivery

log = logging.getLogger(__name__)

STATUS_PATH = "/alerts/twilio/status"
INBOUND_PATH = "/alerts/twilio/sms"
_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
TWIML = "application/xml"


class AlertRoutes:
    def __init__(
        self,
        config: AlertsConfig,
        session_factory: sessionmaker[Session],
        metrics: AlertMetrics,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.sessions = session_factory
        self.metrics = metrics
        self.clock = clock
        token = config.twilio_auth_token.get_secret_value() if config.twilio_auth_token else None
        self.validator = RequestValidator(token) if token and config.twilio is not None else None

    def register(self, app: web.Application) -> None:
        api.register(app, api.AlertsApi(self.sessions, self.metrics, self.clock))
        app.router.add_get("/e/{event_id:\\d{1,18}}", self.short_link)
        if self.validator is not None:
            app.router.add_post(STATUS_PATH, self.status_callback)
            app.router.add_post(INBOUND_PATH, self.inbound_sms)

    async def _db(self, fn: Callable[[Session], Any]) -> Any:
        def run() -> Any:
            with self.sessions.begin() as session:
                return fn(session)

        return await asyncio.to_thread(run)

    # -- Twilio -------------------------------------------------------------------------------------
    async def _signed_form(self, request: web.Request, endpoint: str) -> dict[str, str] | None:
        """The form of a request Twilio really sent, or None (and a 403 to answer) for a forgery."""
        form = {k: str(v) for k, v in (await request.post()).items()}
        base = self.config.twilio.callback_base_url if self.config.twilio else None
        # Behind a proxy the URL Twilio signed is the public one, not the one aiohttp sees.
        url = f"{base}{request.path_qs}" if base else str(request.url)
        signature = request.headers.get("X-Twilio-Signature", "")
        assert self.validator is not None
        if not signature or not self.validator.validate(url, form, signature):
            self.metrics.rejected.labels(endpoint, "bad_signature").inc()
            log.warning(
                "%s: refused a request with a bad X-Twilio-Signature from %s", endpoint, request.remote
            )
            return None
        return form

    async def status_callback(self, request: web.Request) -> web.Response:
        form = await self._signed_form(request, "status")
        if form is None:
            return web.Response(status=403, text="bad signature")
        sid, status = form.get("MessageSid", ""), form.get("MessageStatus", "").lower()
        delivery_id = request.query.get("d", "")
        if not _SID.match(sid) or not status.isalpha() or not delivery_id.isdigit():
            self.metrics.rejected.labels("status", "malformed").inc()
            log.warning("status callback without a usable MessageSid, MessageStatus or delivery id")
            return web.Response(status=400, text="malformed")
        error = form.get("ErrorCode")

        def update(session: Session) -> bool:
            delivery = session.get(Delivery, int(delivery_id))
            if delivery is None or (delivery.provider_sid not in (None, sid)):
                return False
            delivery.provider_sid = sid
            delivery.provider_status = status[:16]
            if status in ("failed", "undelivered"):
                delivery.state = "failed"
                delivery.last_error = f"twilio {status}, error code {error}"
            elif delivery.state in ("unknown", "sending"):
                # The callback is proof the message exists: settles an unknown without asking.
                delivery.state, delivery.sent_at = "sent", delivery.sent_at or self.clock()
            refresh_state(delivery.alert)
            return True

        if not await self._db(update):
            self.metrics.rejected.labels("status", "unknown_delivery").inc()
            log.warning("status callback for delivery %s / %s, which is not ours", delivery_id, sid)
        return web.Response(status=204)

    async def inbound_sms(self, request: web.Request) -> web.Response:
        form = await self._signed_form(request, "inbound")
        if form is None:
            return web.Response(status=403, text="bad signature")
        sender, body = form.get("From", ""), form.get("Body", "")
        verdict: ReplyVerdict = await self._db(
            lambda session: handle_reply(session, self.config, sender, body, self.clock())
        )
        if verdict.outcome != "acked":
            self.metrics.rejected.labels("inbound", verdict.outcome).inc()
        else:
            self.metrics.acks.labels("sms").inc()
        return self._twiml(verdict.answer)

    @staticmethod
    def _twiml(message: str | None) -> web.Response:
        inner = f"<Message>{escape(message)}</Message>" if message else ""
        return web.Response(
            text=f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>', content_type=TWIML
        )

    @staticmethod
    async def short_link(request: web.Request) -> web.Response:
        """The short link in a message (``/e/123``, five characters less per SMS) to the event page."""
        raise web.HTTPFound(f"/events/{request.match_info['event_id']}")
