"""Users (admins only): list, add, change role, disable."""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from .auth import FORM_KEY
from .core import dashboard_of
from .guard import requires
from .models import ROLES, User
from .throttle import locked_users
from .users import UserError, change_user, create_user

log = logging.getLogger(__name__)


async def _page(request: web.Request, status: int = 200, error: str | None = None) -> web.Response:
    dash = dashboard_of(request)
    users = await dash.read(lambda db: list(db.scalars(select(User).order_by(User.username))))
    locked = await locked_users(dash)
    return await dash.render(
        request, "users.html", status=status, users=users, roles=ROLES, error=error, locked=locked
    )


@requires("admin")
async def users_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@requires("admin")
async def user_add(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    form = request[FORM_KEY]
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    role = str(form.get("role") or "")

    def add(db: Session) -> None:
        create_user(db, username, password, role)

    try:
        await dash.write(add)
    except UserError as exc:
        dash.metrics.refused.labels("bad_input").inc()
        log.info("user %r not added: %s", username[:64], exc)
        return await _page(request, status=400, error=exc.translated(await dash.gettext(request)))
    log.info("user %s added with role %s", username, role)
    raise web.HTTPSeeOther("/users")


@requires("admin")
async def user_change(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    me = await dash.current_user(request)
    assert me is not None
    form = request[FORM_KEY]
    user_id = int(request.match_info["user_id"])
    role = str(form.get("role") or "") or None
    disabled = {"1": True, "0": False}.get(str(form.get("disabled") or ""))

    def change(db: Session) -> None:
        change_user(db, user_id, role, disabled, me.id)

    try:
        await dash.write(change)
    except UserError as exc:
        dash.metrics.refused.labels("bad_input").inc()
        log.info("user %d not changed: %s", user_id, exc)
        return await _page(request, status=400, error=exc.translated(await dash.gettext(request)))
    log.info("%s changed user %d: role=%s disabled=%s", me.username, user_id, role, disabled)
    raise web.HTTPSeeOther("/users")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/users", users_page),
        web.post("/users", user_add),
        web.post(r"/users/{user_id:\d{1,9}}", user_change),
    ]
