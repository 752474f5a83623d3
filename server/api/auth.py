"""Who may use the REST API: a bearer token from the config (or the environment), or another
authenticator a component adds (the dashboard accepts its logged-in session)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from .roles import API_ROLE, ROLES, split_token

log = logging.getLogger(__name__)

Authenticator = Callable[[web.Request], Awaitable[bool]]
API_PREFIX = "/api/v1/"
AUTHENTICATORS = web.AppKey("api_authenticators", list[Authenticator])


def token_authenticator(tokens: list[str]) -> Authenticator:
    encoded = [(role, token.encode()) for role, token in (split_token(t) for t in tokens if t) if token]

    async def check(request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        given = header[len("Bearer ") :].strip().encode()
        # compare against every token, always, so timing does not reveal which one nearly matched
        matches = [role for role, token in encoded if hmac.compare_digest(given, token)]
        if matches:
            request[API_ROLE] = max(matches, key=ROLES.index)
        return bool(matches)

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
