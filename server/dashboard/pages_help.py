"""The help page and the field guides (ranger's, installer's), in the reader's language."""

from __future__ import annotations

from aiohttp import web

from .core import dashboard_of
from .guard import requires

GUIDES = ("ranger", "installer")


@requires("viewer")
async def help_page(request: web.Request) -> web.StreamResponse:
    return await dashboard_of(request).render(request, "help.html", guide=None)


@requires("viewer")
async def guide_page(request: web.Request) -> web.StreamResponse:
    guide = request.match_info["guide"]
    if guide not in GUIDES:
        raise web.HTTPNotFound(text="no such guide")
    return await dashboard_of(request).render(request, "help.html", guide=guide)


def routes() -> list[web.RouteDef]:
    return [web.get("/help", help_page), web.get("/help/{guide}", guide_page)]
