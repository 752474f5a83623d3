"""The aiohttp application: REST API, health, metrics; components add their own pages and callbacks."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from .api import data
from .api.auth import AUTHENTICATORS, api_auth, token_authenticator
from .api.views import CONTEXT, MEDIA_STORE, routes
from .context import StationContext
from .ingest import IngestService, MediaStore


def make_app(ctx: StationContext, ingest: IngestService | None = None) -> web.Application:
    app = web.Application(client_max_size=ctx.config.http.client_max_size, middlewares=[api_auth])
    app[CONTEXT] = ctx
    app[MEDIA_STORE] = ingest.media if ingest else MediaStore(ctx.media_root)
    tokens = [t.get_secret_value() for t in ctx.config.http.api_tokens]
    app[AUTHENTICATORS] = [token_authenticator(tokens)]
    app.add_routes(routes())
    app.add_routes(data.routes())

    async def healthz(_request: web.Request) -> web.Response:
        def db_ok() -> bool:
            try:
                with ctx.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return True
            except Exception:  # any database failure means unhealthy; the reason is in the log
                return False

        database = await asyncio.to_thread(db_ok)
        broker = bool(ingest and ingest.link.connected)
        ok = database and broker
        # Reported, not judged: an SMS channel down has a fallback and does not make the station unhealthy.
        parts = {name: part() for name, part in ctx.health.items()}
        return web.json_response(
            {"status": "ok" if ok else "degraded", "database": database, "broker": broker, **parts},
            status=200 if ok else 503,
        )

    async def metrics(_request: web.Request) -> web.Response:
        body = generate_latest(ctx.metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app
