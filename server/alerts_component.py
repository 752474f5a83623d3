"""The alerts component of the station: the outbox hook inside the pipeline's event transactions, the
sender on its own thread and asyncio loop, and the HTTP routes (callbacks, replies, API)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from yaguar.alerts.channels.base import Channel
from yaguar.alerts.channels.gsm import GsmChannel
from yaguar.alerts.channels.log import LogChannel
from yaguar.alerts.channels.twilio_sms import TwilioSmsChannel
from yaguar.alerts.channels.webhook import WebhookChannel
from yaguar.alerts.config import AlertsConfig
from yaguar.alerts.deliveries import DeliveryPlanner
from yaguar.alerts.device_watch import DeviceWatch
from yaguar.alerts.metrics import AlertMetrics
from yaguar.alerts.modem_watch import ModemWatch
from yaguar.alerts.outbox import Outbox
from yaguar.alerts.sender import SENDER_BUSY_TIMEOUT_MS, Sender
from yaguar.alerts.test_sms import TestAttempt, check_request, send_test_sms
from yaguar.alerts.web import STATUS_PATH, AlertRoutes
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.base import utcnow

from .context import StationContext
from .device_alerts import DeviceWatchLoop

log = logging.getLogger(__name__)

TEST_SMS_TIMEOUT_S = 150.0  # each channel's own timeouts end sooner (Twilio 2x10 s, the modem 60 s)


def make_channels(config: AlertsConfig, modem_factory: Callable[[], Any] | None = None) -> dict[str, Channel]:
    """The log channel always exists; Twilio, the GSM modem and the webhook when configured.
    ``modem_factory`` makes the Gammu state machine (tests wrap the dummy phone's)."""
    channels: dict[str, Channel] = {"log": LogChannel()}
    if config.gsm is not None:
        pin = config.gsm_pin.get_secret_value() if config.gsm_pin else None
        channels["gsm"] = GsmChannel(config.gsm, pin, *([modem_factory] if modem_factory else []))
    if config.twilio is not None and config.twilio_auth_token is not None:
        base = config.twilio.callback_base_url
        channels["twilio"] = TwilioSmsChannel(
            config.twilio,
            config.twilio_auth_token.get_secret_value(),
            f"{base}{STATUS_PATH}" if base else None,
        )
    if config.webhook is not None:
        channels["webhook"] = WebhookChannel(config.webhook.timeout_s)
    return channels


def sender_database(ctx: StationContext) -> tuple[Engine | None, sessionmaker[Session]]:
    """On SQLite the sender gets its own connection that fails fast on a taken write lock (its loop
    retries every few ms, see ``Sender.run``); on PostgreSQL it shares the station's engine."""
    storage = ctx.config.storage
    if make_url(storage.database_url).get_backend_name() != "sqlite":
        return None, ctx.session_factory
    engine = make_db_engine(
        storage.database_url, storage.sqlite_synchronous, busy_timeout_ms=SENDER_BUSY_TIMEOUT_MS
    )
    return engine, make_session_factory(engine)


class AlertsComponent:
    name = "alerts"

    def __init__(self, ctx: StationContext, clock: Callable[[], datetime] = utcnow) -> None:
        self.ctx = ctx
        config = ctx.config.alerts
        self.metrics = AlertMetrics(ctx.metrics)
        planner = DeliveryPlanner(config, ctx.config.http.public_url, self.metrics)
        self.channels = make_channels(config)
        self._sender_engine, sender_sessions = sender_database(ctx)
        self.sender = Sender(config, sender_sessions, planner, self.channels, self.metrics, clock)
        self.outbox = Outbox(config, planner, self.metrics, clock, wake=self.sender.wake)
        gsm = self.channels.get("gsm")
        self.modem_watch = (
            ModemWatch(gsm, config, ctx.session_factory, self.metrics, self.sender, clock)
            if isinstance(gsm, GsmChannel)
            else None
        )
        ctx.health["alerts"] = self.health
        ctx.send_test_sms = self.send_test_sms
        self.routes = AlertRoutes(config, ctx.session_factory, self.metrics, clock)
        watch = DeviceWatch(config, planner, self.metrics, ctx.config.http.public_url)
        self.devices = DeviceWatchLoop(watch, ctx.session_factory, clock, self.sender.wake)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        if config.sms_route() == ["log"]:
            log.warning("alerts: neither Twilio nor a GSM modem is configured; SMS alerts go to the log")

    def start(self) -> None:
        self.ctx.hooks.event_in_transaction.append(self.outbox.on_event)
        self._thread = threading.Thread(target=self._serve, name="alert-sender", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            loops = [self.sender.run(self._stop), self.devices.run(self._stop)]
            if self.modem_watch is not None:
                loops.append(self.modem_watch.run(self._stop))
            await asyncio.gather(*loops)
        finally:
            for channel in self.channels.values():
                await channel.close()

    def stop(self) -> None:
        # The outbox hook stays: the pipeline stops after us and its last events must still carry their
        # alerts (sent at the next start, from the outbox).
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)
        if self._sender_engine is not None:
            self._sender_engine.dispose()

    def health(self) -> dict[str, Any]:
        """For /healthz: the SMS channels in order, which are down, and the modem's state."""
        out: dict[str, Any] = {"sms_channels": self.sender.health.as_dict()}
        if self.modem_watch is not None:
            out["gsm"] = self.modem_watch.channel.state.as_dict()
        return out

    def send_test_sms(self, number: str, channel: str | None) -> list[TestAttempt]:
        """Blocking, from any thread: a test SMS on the sender's loop, where the channels live."""
        config = self.ctx.config.alerts
        check_request(config, number, channel)  # bad input fails here, before the loop is involved
        if self._loop is None or self._loop.is_closed():
            raise RuntimeError("the alert sender is not running")
        work = send_test_sms(config, self.channels, number, socket.gethostname(), channel)
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(TEST_SMS_TIMEOUT_S)

    def setup_routes(self, app: web.Application) -> None:
        self.routes.register(app)


def factory(ctx: StationContext) -> AlertsComponent | None:
    return AlertsComponent(ctx) if ctx.config.alerts.enabled else None
