"""The dashboard as a station component: its routes, static files, sessions, and the live-feed hook."""

from __future__ import annotations

import asyncio
import logging
from importlib import resources

import aiohttp_session
from aiohttp import web

from ..analysis import pages as analysis_pages
from ..api.auth import AUTHENTICATORS
from ..context import StationContext
from ..deployments import fieldmap
from ..deployments import pages as deployment_pages
from . import (
    box_review,
    pages_alerts,
    pages_auth,
    pages_cameras,
    pages_classifiers,
    pages_clip,
    pages_event,
    pages_export,
    pages_feed,
    pages_help,
    pages_media,
    pages_users,
    throttle,
)
from .auth import session_api_authenticator, session_storage
from .core import DASHBOARD_KEY, Dashboard
from .warmer import ThumbnailWarmer

log = logging.getLogger(__name__)

PAGE_MODULES = (
    pages_auth,
    pages_feed,
    pages_event,
    pages_clip,
    pages_media,
    pages_cameras,
    pages_alerts,
    pages_users,
    throttle,
    pages_classifiers,
    pages_export,
    deployment_pages,
    analysis_pages,
    fieldmap,
    box_review,
    pages_help,
)


class DashboardComponent:
    name = "dashboard"

    def __init__(self, ctx: StationContext) -> None:
        self.ctx = ctx
        self.dashboard = Dashboard(ctx)
        self.warmer = ThumbnailWarmer(self.dashboard.read_sessions, self.dashboard.thumbs)

    def start(self) -> None:
        self.warmer.start()
        self.ctx.hooks.events_committed.append(self.dashboard.live.events_committed)
        self.ctx.hooks.events_committed.append(self.warmer.events_committed)

    def stop(self) -> None:
        for hook in (self.dashboard.live.events_committed, self.warmer.events_committed):
            if hook in self.ctx.hooks.events_committed:
                self.ctx.hooks.events_committed.remove(hook)
        self.dashboard.live.close()
        self.warmer.stop()

    def setup_routes(self, app: web.Application) -> None:
        app[DASHBOARD_KEY] = self.dashboard
        storage = session_storage(self.ctx.config.dashboard)
        aiohttp_session.setup(app, storage)
        if AUTHENTICATORS in app:
            app[AUTHENTICATORS].append(session_api_authenticator(storage, self.dashboard.load_user))
        for module in PAGE_MODULES:
            app.router.add_routes(module.routes())
        static = resources.files("yaguar.server.dashboard") / "static"
        app.router.add_static("/static/", str(static), name="dashboard_static")
        app.on_startup.append(self._bind_loop)
        app.on_shutdown.append(self._close_streams)

    async def _bind_loop(self, _app: web.Application) -> None:
        self.dashboard.live.bind(asyncio.get_running_loop())

    async def _close_streams(self, _app: web.Application) -> None:
        self.dashboard.live.close()


def factory(ctx: StationContext) -> DashboardComponent | None:
    if not ctx.config.dashboard.enabled:
        log.info("dashboard disabled in the config")
        return None
    return DashboardComponent(ctx)
