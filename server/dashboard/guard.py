"""The guard around every dashboard handler: log-in, role and CSRF checks before the handler runs.

It sits above both ``auth`` (sessions, roles, CSRF) and ``core`` (the dashboard that renders the refusal
pages), so neither of those has to import the other back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from .auth import FORM_KEY, ROLE_RANK, Handler, csrf_ok, login_redirect
from .core import dashboard_of

log = logging.getLogger(__name__)


def requires(role: str, *, data: bool = False) -> Callable[[Handler], Handler]:
    """Wrap a handler: log-in needed, at least ``role``, and a valid CSRF token on POST.

    ``data``: the route answers scripts (live feed, fragments), so no session is 401, not a redirect.
    """
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")

    def wrap(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            dash = dashboard_of(request)
            user = await dash.current_user(request)
            if user is None:
                if data:
                    raise web.HTTPUnauthorized(text="log in first")
                raise login_redirect(request)
            if not user.can(role):
                dash.metrics.refused.labels("forbidden").inc()
                log.info(
                    "%s (%s) refused %s %s: needs %s",
                    user.username,
                    user.role,
                    request.method,
                    request.path,
                    role,
                )
                return await dash.render(request, "error.html", status=403, reason="forbidden")
            if request.method == "POST":
                form = await request.post()
                if not await csrf_ok(request, form):
                    dash.metrics.refused.labels("csrf").inc()
                    log.warning(
                        "form without a valid CSRF token refused: %s %s", request.method, request.path
                    )
                    return await dash.render(request, "error.html", status=403, reason="csrf")
                request[FORM_KEY] = form
            return await handler(request)

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        return guarded

    return wrap
