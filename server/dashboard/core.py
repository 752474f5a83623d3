"""The dashboard's shared state: database sessions, templates per language, metrics, thumbnails, and
the live feed; every page module reaches it through the request's app."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from aiohttp import web
from aiohttp_session import get_session
from markupsafe import Markup, escape
from multidict import MultiDictProxy
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.orm import Session

from ..context import StationContext
from .auth import FORM_KEY, USER_KEY, CurrentUser, csrf_token
from .i18n import LANGUAGES, load_translations, make_environments
from .live import LiveFeed
from .models import User
from .readdb import make_read_sessions
from .refusal import N_, RefusalError
from .species import common_name
from .thumbs import ThumbnailCache

log = logging.getLogger(__name__)

T = TypeVar("T")


CATEGORY_LABELS = {
    "animal": N_("animal"),
    "person": N_("person"),
    "vehicle": N_("vehicle"),
    "blank": N_("blank"),
}
REVIEW_LABELS = {
    "confirm": N_("confirmed"),
    "correct": N_("corrected"),
    "blank": N_("marked blank"),
    "false_positive": N_("false positive"),
}

# States of alerts and of each message (yaguar.alerts.models), and severities, for the alerts pages.
STATE_LABELS = {
    "held": N_("held"),
    "suppressed": N_("suppressed"),
    "pending": N_("pending"),
    "sending": N_("sending"),
    "unknown": N_("unknown"),
    "sent": N_("sent"),
    "failed": N_("failed"),
    "capped": N_("capped"),
    "passed": N_("passed on"),
    "merged": N_("merged"),
    "low": N_("low"),
    "medium": N_("medium"),
    "high": N_("high"),
}
# The ways an alert leaves the station (yaguar.alerts channels).
CHANNEL_LABELS = {
    "twilio": N_("Twilio (internet)"),
    "gsm": N_("GSM modem"),
    "webhook": N_("webhook"),
    "log": N_("log"),
}
ROLE_LABELS = {"viewer": N_("viewer"), "reviewer": N_("reviewer"), "admin": N_("admin")}


# Pages load only the station's own scripts, styles and images (no CDN, nothing inline but the boxes'
# style attributes), cannot be framed by another site, and are never cached by a shared proxy.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "private, no-store",
}


class DashboardMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.refused = Counter(
            "yaguar_dashboard_refused", "requests refused, by reason", ["reason"], registry=registry
        )
        self.logins = Counter(
            "yaguar_dashboard_logins", "log-in attempts, by outcome", ["outcome"], registry=registry
        )
        self.page_seconds = Histogram(
            "yaguar_dashboard_page_seconds",
            "time to build a page",
            ["page"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
        )
        self.live_clients = Gauge(
            "yaguar_dashboard_live_clients", "open live-feed streams", registry=registry
        )
        self.thumbnails = Counter(
            "yaguar_dashboard_thumbnails", "thumbnails made, by outcome", ["outcome"], registry=registry
        )
        self.reviews = Counter(
            "yaguar_dashboard_reviews", "reviews stored, by action", ["action"], registry=registry
        )
        self.retrains = Counter(
            "yaguar_dashboard_retrains",
            "retrainings from reviews, by outcome",
            ["outcome"],
            registry=registry,
        )


def format_local(value: datetime | None, offset_min: int = 0) -> str:
    """A UTC time shown as the camera's local time with its offset, e.g. ``2026-11-26 03:52 (-03:00)``."""
    if value is None:
        return "—"
    local = value.astimezone(UTC) + timedelta(minutes=offset_min)
    sign = "+" if offset_min >= 0 else "-"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{local:%Y-%m-%d %H:%M:%S} ({sign}{hours:02d}:{minutes:02d})"


def species_markup(lang: str) -> Callable[[str | None], Markup]:
    def render(scientific: str | None) -> Markup:
        if not scientific:
            return Markup("—")
        common = _capitalised(common_name(scientific, lang))
        sci = Markup('<i class="sci">{}</i>').format(scientific)
        if common is None:
            return sci
        return Markup('<span class="common">{}</span> ').format(common) + sci

    return render


def filters_for(lang: str) -> dict[str, Any]:
    return {
        "localtime": format_local,
        "species": species_markup(lang),
        "common_name": lambda sci: _capitalised(common_name(sci, lang)) or "",
        "bytes": _human_bytes,
        "pct": lambda v: f"{100 * v:.0f} %" if v is not None else "—",
        "e": escape,
    }


def _capitalised(name: str | None) -> str | None:
    return name[:1].upper() + name[1:] if name else name


def _human_bytes(value: float | None) -> str:
    if value is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


class Dashboard:
    def __init__(self, ctx: StationContext) -> None:
        self.ctx = ctx
        self.config = ctx.config.dashboard
        self.read_sessions = make_read_sessions(ctx.engine, ctx.config.storage.busy_timeout_ms)
        self.write_sessions = ctx.session_factory
        self.metrics = DashboardMetrics(ctx.metrics)
        self.envs = make_environments(
            filters_for,
            {
                "CATEGORY_LABELS": CATEGORY_LABELS,
                "REVIEW_LABELS": REVIEW_LABELS,
                "STATE_LABELS": STATE_LABELS,
                "CHANNEL_LABELS": CHANNEL_LABELS,
            },
        )
        self.translations = {lang: load_translations(lang) for lang in LANGUAGES}
        thumb_dir = self.config.thumb_dir or ctx.media_root / ".thumbs"
        self.thumbs = ThumbnailCache(ctx.media_root, thumb_dir, self.config.thumb_px, self.metrics.thumbnails)
        self.live = LiveFeed(self.metrics.live_clients)
        # (when read, camera and species lists) for the feed's filters; see pages_feed
        self.choices_cache: tuple[float, dict[str, list[str]]] | None = None

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` on a read session in a worker thread (the event loop never waits on disk)."""

        def run() -> T:
            with self.read_sessions() as session:
                return fn(session)

        return await asyncio.to_thread(run)

    async def write(self, fn: Callable[[Session], T]) -> T:
        def run() -> T:
            with self.write_sessions() as session, session.begin():
                return fn(session)

        return await asyncio.to_thread(run)

    async def load_user(self, uid: int) -> CurrentUser | None:
        """The user behind a session, or None when the account is gone or disabled."""

        def load(db: Session) -> CurrentUser | None:
            row = db.get(User, uid)
            if row is None or row.disabled:
                return None
            return CurrentUser(row.id, row.username, row.role, row.language)

        return await self.read(load)

    async def current_user(self, request: web.Request) -> CurrentUser | None:
        if USER_KEY in request:
            return request[USER_KEY]  # type: ignore[return-value]
        session = await get_session(request)
        uid = session.get("uid")
        user: CurrentUser | None = None
        if isinstance(uid, int):
            user = await self.load_user(uid)
            if user is None:
                session.invalidate()
        request[USER_KEY] = user
        return user

    async def language(self, request: web.Request) -> str:
        session = await get_session(request)
        lang = session.get("lang")
        return lang if lang in LANGUAGES else self.config.default_language

    async def render(self, request: web.Request, name: str, status: int = 200, **values: Any) -> web.Response:
        started = time.perf_counter()
        lang = await self.language(request)
        template = self.envs[lang].get_template(name)
        html = template.render(
            user=await self.current_user(request),
            csrf_token=await csrf_token(request),
            path=request.path,
            path_qs=request.path_qs,
            **values,
        )
        self.metrics.page_seconds.labels(name.removesuffix(".html")).observe(time.perf_counter() - started)
        return web.Response(
            text=html, status=status, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
        )

    async def gettext(self, request: web.Request) -> Callable[[str], str]:
        return self.translations[await self.language(request)].gettext

    async def bad_request(self, request: web.Request, refusal: RefusalError) -> web.HTTPBadRequest:
        """A 400 to raise: the error page with the reason in the reader's language (the caller has
        logged and counted it)."""
        detail = refusal.translated(await self.gettext(request))
        page = await self.render(request, "error.html", status=400, reason="bad_input", detail=detail)
        return web.HTTPBadRequest(text=page.text, content_type="text/html", headers=PAGE_HEADERS)

    async def refuse(self, request: web.Request, refusal: RefusalError, what: str) -> web.HTTPBadRequest:
        """A refused input counted, logged (``what`` says whose) and answered: the 400 to raise."""
        self.metrics.refused.labels("bad_input").inc()
        log.info("%s refused: %s", what, refusal)
        return await self.bad_request(request, refusal)


DASHBOARD_KEY = web.AppKey("yaguar_dashboard", Dashboard)


def dashboard_of(request: web.Request) -> Dashboard:
    return request.app[DASHBOARD_KEY]


async def posted(request: web.Request) -> tuple[Dashboard, CurrentUser, MultiDictProxy[str | bytes | Any]]:
    """For a form handler behind ``requires``: the dashboard, the user let in, and the checked form."""
    dash = dashboard_of(request)
    user = await dash.current_user(request)
    assert user is not None  # requires() let us in
    return dash, user, request[FORM_KEY]
