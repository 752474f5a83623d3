"""Roles of API callers, as for dashboard users: viewer (reads), reviewer (also exports), admin (also
changes deployments). A token in ``YAGUAR_API_TOKENS`` may say its role, ``viewer:TOKEN``; a token
without one is an admin, as every token was before roles existed."""

from __future__ import annotations

from aiohttp import web

ROLES = ("viewer", "reviewer", "admin")
API_ROLE = web.RequestKey("yaguar_api_role", str)


def split_token(entry: str) -> tuple[str, str]:
    """``role:token`` -> (role, token); a bare token is an admin's."""
    role, sep, token = entry.partition(":")
    if sep and role in ROLES:
        return role, token
    return "admin", entry


def require_role(request: web.Request, role: str) -> None:
    """403 (JSON) unless the caller's role is ``role`` or above."""
    given = request.get(API_ROLE, "viewer")
    if ROLES.index(given) < ROLES.index(role):
        raise web.HTTPForbidden(
            text=f'{{"error": "forbidden", "detail": "this needs a {role} token; yours is a {given} token"}}',
            content_type="application/json",
        )
