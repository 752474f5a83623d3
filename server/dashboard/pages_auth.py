"""Log-in, log-out and the language switch."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp_session import get_session
from sqlalchemy import select
from sqlalchemy.orm import Session

from yaguar.storage.base import utcnow

from .auth import USER_KEY, CurrentUser, csrf_ok, safe_next, start_session, verify_password
from .core import dashboard_of
from .i18n import LANGUAGES
from .models import User
from .throttle import record_failure, record_success, refuse_if_waiting

log = logging.getLogger(__name__)

# Checked against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$zl/YR4URjfmPib/zFP95Bw$3rRL5NvXtHY6MlgK3Z/FnP3k8xyaAl+nRu5zT0ur0FA"
)


async def login_page(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    if await dash.current_user(request) is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    return await dash.render(request, "login.html", next=safe_next(request.query.get("next")), failed=False)


async def login_submit(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    form = await request.post()
    target = safe_next(str(form.get("next") or "/"))
    if not await csrf_ok(request, form):
        dash.metrics.refused.labels("csrf").inc()
        log.warning("log-in form without a valid CSRF token refused")
        return await dash.render(request, "error.html", status=403, reason="csrf")
    username = str(form.get("username") or "").strip()[:64]
    password = str(form.get("password") or "")[:1024]

    async def render(status: int, wait_s: int = 0) -> web.StreamResponse:
        return await dash.render(
            request, "login.html", status=status, next=target, failed=True, wait_s=wait_s
        )

    if (refused := await refuse_if_waiting(request, username, render)) is not None:
        return refused

    def check(db: Session) -> CurrentUser | None:
        row = db.scalars(select(User).where(User.username == username)).one_or_none()
        if row is None or row.disabled:
            verify_password(_DUMMY_HASH, password)
            return None
        if not verify_password(row.password_hash, password):
            return None
        row.last_login_at = utcnow()
        return CurrentUser(row.id, row.username, row.role, row.language)

    user = await dash.write(check)
    if user is None:
        dash.metrics.logins.labels("failed").inc()
        log.info("failed log-in for %r from %s", username, request.remote)
        return await render(401, await record_failure(request, username))
    dash.metrics.logins.labels("ok").inc()
    await record_success(request, user.username)
    start_session(await get_session(request), user)
    request[USER_KEY] = user
    log.info("%s logged in", user.username)
    raise web.HTTPSeeOther(target)


async def logout(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    form = await request.post()
    if not await csrf_ok(request, form):
        dash.metrics.refused.labels("csrf").inc()
        return await dash.render(request, "error.html", status=403, reason="csrf")
    (await get_session(request)).invalidate()
    raise web.HTTPSeeOther("/login")


async def set_language(request: web.Request) -> web.StreamResponse:
    """Anyone may switch (the log-in page has the switch too); a logged-in user keeps the choice."""
    dash = dashboard_of(request)
    form = await request.post()
    if not await csrf_ok(request, form):
        dash.metrics.refused.labels("csrf").inc()
        log.warning("language form without a valid CSRF token refused")
        return await dash.render(request, "error.html", status=403, reason="csrf")
    lang = str(form.get("lang") or "")
    if lang not in LANGUAGES:
        dash.metrics.refused.labels("bad_input").inc()
        log.info("unknown language %r refused", lang[:16])
        return await dash.render(request, "error.html", status=400, reason="bad_input")
    (await get_session(request))["lang"] = lang
    user = await dash.current_user(request)
    if user is not None:

        def remember(db: Session) -> None:
            row = db.get(User, user.id)
            if row is not None:
                row.language = lang

        await dash.write(remember)
    raise web.HTTPSeeOther(safe_next(str(form.get("next") or "/")))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/login", login_page),
        web.post("/login", login_submit),
        web.post("/logout", logout),
        web.post("/lang", set_language),
    ]
