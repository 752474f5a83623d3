"""Who is looking: passwords (argon2id), encrypted session cookies, roles, and CSRF tokens on forms.

Handlers are wrapped with ``guard.requires``: without a session a page answers with the log-in page
(a redirect to it) and a data route with 401; a role too low answers 403; a POST without the session's
CSRF token answers 403 before the handler runs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web
from aiohttp_session import Session, get_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from multidict import MultiDictProxy

from ..api.roles import API_ROLE
from .models import ROLES

if TYPE_CHECKING:
    from ..dashboard_config import DashboardConfig

log = logging.getLogger(__name__)

ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
COOKIE_NAME = "yaguar_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
USER_KEY = web.RequestKey("yaguar_user", object)  # per-request cache of the logged-in user (or None)
FORM_KEY = web.RequestKey("yaguar_form", MultiDictProxy)  # the POST form, read once and CSRF-checked

_hasher = PasswordHasher()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    role: str
    language: str | None

    def can(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]


def session_storage(config: DashboardConfig) -> EncryptedCookieStorage:
    """Fernet-encrypted, signed cookie; HttpOnly and SameSite=Lax always, Secure when configured."""
    if config.session_secret is not None:
        key = hashlib.sha256(config.session_secret.get_secret_value().encode()).digest()
    else:
        log.warning("YAGUAR_SESSION_SECRET is not set: a random session key is used, log-ins end at restart")
        key = os.urandom(32)
    return EncryptedCookieStorage(
        key,
        cookie_name=COOKIE_NAME,
        max_age=config.session_max_age_s,
        secure=config.cookie_secure,
        httponly=True,
        samesite="Lax",
    )


async def csrf_token(request: web.Request) -> str:
    session = await get_session(request)
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


async def csrf_ok(request: web.Request, form: Any) -> bool:
    session = await get_session(request)
    expected = session.get("csrf")
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    return isinstance(expected, str) and hmac.compare_digest(expected, str(given))


def start_session(session: Session, user: CurrentUser) -> None:
    """Log ``user`` in on a fresh session (new CSRF token: no fixation across the log-in)."""
    lang = session.get("lang")
    session.invalidate()
    session["uid"] = user.id
    session["csrf"] = secrets.token_urlsafe(32)
    if user.language:
        session["lang"] = user.language
    elif lang:
        session["lang"] = lang


def safe_next(target: str | None) -> str:
    """Only local paths: a log-in link must not send the user to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_redirect(request: web.Request) -> web.HTTPSeeOther:
    # After log-in the browser comes back with a GET: only a page address is worth returning to.
    target = request.path_qs if request.method == "GET" else "/"
    return web.HTTPSeeOther(f"/login?next={quote(target, safe='')}")


def session_api_authenticator(
    storage: EncryptedCookieStorage, load_user: Callable[[int], Awaitable[CurrentUser | None]]
) -> Callable[[web.Request], Awaitable[bool]]:
    """Lets the pages call the REST API with the log-in session: reads only (GET/HEAD), so a session
    can never change data through the API without the API's own token."""

    async def check(request: web.Request) -> bool:
        if request.method not in ("GET", "HEAD"):
            return False
        # The API's middleware runs before the session middleware: load the cookie directly.
        session = await storage.load_session(request)
        uid = session.get("uid")
        user = await load_user(uid) if isinstance(uid, int) else None
        if user is not None:
            request[API_ROLE] = user.role
        return user is not None

    return check
