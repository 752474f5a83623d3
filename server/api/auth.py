"""Who may use the REST API: a bearer token from the config (or the environment), or another
authenticator a component adds (the dashboard accepts its logged-in session)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

Authenticator = Callable[[web.Request], Awaitable[bool]]
API_PREFIX = "/api/v1/"
AUTHENTICATORS = web.AppKey("api_authenticators", list[Authenticator])


def token_authenticator(tokens: list[str]) -> Authenticator:
    encoded = [t.encode() for t in tokens if t]

    async def check(request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        given = header[len("Bearer ") :].strip().encode()
        # compare against every token, always, so timing does not reveal which one nearly matched
        return any([hmac.compare_digest(given, token) for token in encoded])  # noqa: C419

    return check


@web.middleware
async def api_auth(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path.startswith(API_PREFIX) or request.path == API_PREFIX.rstrip("/"):
        for authenticator in request.app[AUTHENTICATORS]:
            if await authenticator(request):
                return await handler(request)
        return web.json_response(
            {"error": "unauthorized", "detail": "send an API token: Authorization: Bearer <token>"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="yaguar"'},
        )
    return await handler(request)
