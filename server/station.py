"""The station process: database, ingest, the optional components, and the HTTP server."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory

from . import components
from .app import make_app
from .config import StationConfig
from .context import Component, StationContext, StationHooks
from .ingest import IngestService

log = logging.getLogger(__name__)


# What a pipeline-only worker runs (``yaguar-station worker``): no ingest, no web server.
WORKER_COMPONENTS = ("pipeline", "alerts")


class Station:
    def __init__(self, config: StationConfig, http: bool = True, ingest: bool = True) -> None:
        self.config = config
        engine = make_db_engine(
            config.storage.database_url,
            sqlite_synchronous=config.storage.sqlite_synchronous,
            busy_timeout_ms=config.storage.busy_timeout_ms,
        )
        self.context = StationContext(
            config=config,
            engine=engine,
            session_factory=make_session_factory(engine),
            media_root=Path(config.storage.media_root),
            metrics=CollectorRegistry(),
            hooks=StationHooks(),
        )
        self.ingest: IngestService | None = None
        self.components: list[Component] = []
        self.http_enabled = http
        self.ingest_enabled = ingest
        self.http_url: str | None = None
        self._http_thread: threading.Thread | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._http_ready = threading.Event()
        self._http_error: BaseException | None = None

    @property
    def session_factory(self) -> sessionmaker[Session]:
        return self.context.session_factory

    def start(self) -> Station:
        upgrade(self.context.engine)
        if self.ingest_enabled:
            self.ingest = IngestService(self.context)
            self.context.agents = self.ingest.link
        for factory in components.factories():
            component = factory(self.context)
            if component is not None and (self.ingest_enabled or component.name in WORKER_COMPONENTS):
                self.components.append(component)
        if self.ingest is not None:
            self.ingest.start()
        for component in self.components:
            component.start()
            log.info("started %s", component.name)
        if self.http_enabled:
            self._start_http()
        return self

    def stop(self) -> None:
        self.context.stopping.set()
        if self._http_loop is not None:
            self._http_loop.call_soon_threadsafe(self._http_loop.stop)
            if self._http_thread:
                self._http_thread.join(10)
        for component in reversed(self.components):
            component.stop()
        if self.ingest is not None:
            self.ingest.stop()
        self.context.engine.dispose()

    def app(self) -> web.Application:
        app = make_app(self.context, self.ingest)
        for component in self.components:
            component.setup_routes(app)
        return app

    # --- HTTP server on its own event loop thread, so tests and the CLI drive the station the same way
    def _start_http(self) -> None:
        self._http_thread = threading.Thread(target=self._serve_http, name="http", daemon=True)
        self._http_thread.start()
        self._http_ready.wait(30)
        if self._http_error is not None:
            raise RuntimeError(f"the web server did not start: {self._http_error}") from self._http_error

    def _serve_http(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._http_loop = loop
        runner = web.AppRunner(self.app(), access_log=None)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.config.http.host, self.config.http.port)
            loop.run_until_complete(site.start())
            port = runner.addresses[0][1]
            self.http_url = f"http://{self.config.http.host}:{port}"
            log.info("dashboard and API on %s", self.http_url)
        except BaseException as exc:
            self._http_error = exc
            self._http_ready.set()
            return
        self._http_ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()
