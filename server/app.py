"""The aiohttp application: REST API, health, metrics; components add their own pages and callbacks."""

from __future__ import annotations

import asyncio
import ipaddress

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from .api import data, oas
from .api.auth import AUTHENTICATORS, api_auth, token_authenticator
from .api.handlers import CONTEXT, MEDIA_STORE
from .api.views import routes
from .context import StationContext
from .ingest import IngestService, MediaStore


def _is_loopback(remote: str | None) -> bool:
    try:
        return ipaddress.ip_address(remote or "").is_loopback
    except ValueError:  # no address (a Unix socket): not a loopback client we can vouch for
        return False


def make_app(ctx: StationContext, ingest: IngestService | None = None) -> web.Application:
    app = web.Application(client_max_size=ctx.config.http.client_max_size, middlewares=[api_auth])
    app[CONTEXT] = ctx
    app[MEDIA_STORE] = ingest.media if ingest else MediaStore(ctx.media_root)
    tokens = [t.get_secret_value() for t in ctx.config.http.api_tokens]
    app[AUTHENTICATORS] = [token_authenticator(tokens)]
    app.add_routes(routes())
    app.add_routes(data.routes())
    app.add_routes(oas.routes())

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

    metrics_token = token_authenticator(tokens)

    async def metrics(request: web.Request) -> web.Response:
        # [http] metrics_access: "open", "loopback" (this PC only) or "token" (a REST API bearer token)
        access = ctx.config.http.metrics_access
        allowed = (
            access == "open"
            or (access == "loopback" and _is_loopback(request.remote))
            or (access == "token" and await metrics_token(request))
        )
        if not allowed:
            raise web.HTTPForbidden(text=f"/metrics is limited to {access} ([http] metrics_access)\n")
        body = generate_latest(ctx.metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app
