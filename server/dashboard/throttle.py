"""Log-in throttling: after a few failures for a user name, or from an address, each next attempt waits
twice as long as the one before (up to a ceiling). A waiting attempt is answered at once, without
checking the password, and the page says how long to wait. A right password after the wait works, and
an admin can lift a user's wait from the Users page.

The counts are kept in the database (``login_failures``): a restart does not forget them (an attacker
cannot clear their wait by crashing the station), and every station process on one PostgreSQL sees the
same counts. A failure is counted with one upsert, so two processes counting at once both count. Counts
untouched for a day are forgotten.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from yaguar.storage.base import utcnow

from .core import dashboard_of
from .guard import requires
from .models import LoginFailures

if TYPE_CHECKING:
    from yaguar.server.dashboard_config import DashboardConfig

    from .core import Dashboard

log = logging.getLogger(__name__)

FORGET_AFTER = timedelta(days=1)  # a name or address with no failure for this long starts again


class LoginThrottle:
    def __init__(
        self, free: int, base_s: float, max_s: float, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.free, self.base_s, self.max_s, self.clock = free, base_s, max_s, clock

    @staticmethod
    def _keys(username: str, address: str) -> list[tuple[str, str]]:
        return [("user", username.lower()[:80]), ("address", address[:80])]

    def wait_s(self, db: Session, username: str, address: str) -> float:
        """Seconds before this user name may try again from this address (0: now)."""
        now = self.clock()
        waits = [
            (row.wait_until - now).total_seconds()
            for kind, key in self._keys(username, address)
            if (row := _row(db, kind, key)) is not None and row.wait_until is not None
        ]
        return max([0.0, *waits])

    def failed(self, db: Session, username: str, address: str) -> float:
        """Count a wrong password; returns the back-off it starts (0 while failures are still free)."""
        now = self.clock()
        db.execute(delete(LoginFailures).where(LoginFailures.updated_at < now - FORGET_AFTER))
        backoff = 0.0
        for kind, key in self._keys(username, address):
            failures = _count_failure(db, kind, key, now)
            if failures > self.free:
                delay = min(self.max_s, self.base_s * 2 ** min(failures - self.free - 1, 60))
                row = _row(db, kind, key)
                assert row is not None  # counted just now, in this transaction
                row.wait_until = now + timedelta(seconds=delay)
                backoff = max(backoff, delay)
        return backoff

    def succeeded(self, db: Session, username: str) -> None:
        """The user proved who they are: their name's count starts again (the address's does not)."""
        self.unlock(db, username)

    def unlock(self, db: Session, username: str) -> bool:
        (kind, key), _ = self._keys(username, "")
        gone = db.execute(delete(LoginFailures).where(LoginFailures.kind == kind, LoginFailures.key == key))
        return bool(getattr(gone, "rowcount", 0))

    def locked_users(self, db: Session) -> list[tuple[str, int, int]]:
        """(user name, failures, seconds still to wait) of every user name with failures counted."""
        now = self.clock()
        rows = db.scalars(
            select(LoginFailures).where(LoginFailures.kind == "user").order_by(LoginFailures.key)
        )
        return [
            (
                r.key,
                r.failures,
                max(0, math.ceil((r.wait_until - now).total_seconds())) if r.wait_until else 0,
            )
            for r in rows
        ]


def _row(db: Session, kind: str, key: str) -> LoginFailures | None:
    return db.scalars(
        select(LoginFailures).where(LoginFailures.kind == kind, LoginFailures.key == key)
    ).one_or_none()


def _count_failure(db: Session, kind: str, key: str, now: datetime) -> int:
    """One more failure for (kind, key), created at 1 if new: one statement, so concurrent log-ins on
    several processes never lose a count (the row stays locked until the transaction ends)."""
    table = LoginFailures.__table__
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    upsert = dialect.insert(table).values(kind=kind, key=key, failures=1, updated_at=now)
    upsert = upsert.on_conflict_do_update(
        index_elements=[table.c.kind, table.c.key],
        set_={"failures": table.c.failures + 1, "updated_at": now},
    )
    return int(db.execute(upsert.returning(table.c.failures)).scalar_one())


_throttles: weakref.WeakKeyDictionary[Dashboard, LoginThrottle] = weakref.WeakKeyDictionary()


def throttle_of(dash: Dashboard) -> LoginThrottle:
    """The dashboard's throttle, made on first use from its config."""
    if dash not in _throttles:
        config: DashboardConfig = dash.config
        _throttles[dash] = LoginThrottle(
            config.login_free_failures, config.login_backoff_s, config.login_backoff_max_s
        )
    return _throttles[dash]


async def refuse_if_waiting(request: web.Request, username: str, render: Any) -> web.StreamResponse | None:
    """Before checking a password: a waiting user name or address gets the log-in page saying how long
    to wait (HTTP 429), and the password is not looked at."""
    dash = dashboard_of(request)
    throttle = throttle_of(dash)
    wait = await dash.read(lambda db: throttle.wait_s(db, username, request.remote or "?"))
    if wait <= 0:
        return None
    dash.metrics.logins.labels("throttled").inc()
    log.warning("log-in for %r from %s refused: back-off, %.0f s left", username, request.remote, wait)
    response: web.StreamResponse = await render(status=429, wait_s=math.ceil(wait))
    response.headers["Retry-After"] = str(math.ceil(wait))
    return response


async def record_failure(request: web.Request, username: str) -> int:
    """After a wrong password: count it; returns the seconds the next attempt must wait (0: none)."""
    dash = dashboard_of(request)
    throttle = throttle_of(dash)
    backoff = await dash.write(lambda db: throttle.failed(db, username, request.remote or "?"))
    if backoff:
        log.warning("failed log-in for %r from %s: next attempt in %.1f s", username, request.remote, backoff)
    return math.ceil(backoff)


async def record_success(request: web.Request, username: str) -> None:
    dash = dashboard_of(request)
    throttle = throttle_of(dash)
    await dash.write(lambda db: throttle.succeeded(db, username))


async def locked_users(dash: Dashboard) -> list[tuple[str, int, int]]:
    throttle = throttle_of(dash)
    return await dash.read(throttle.locked_users)


@requires("admin")
async def unlock(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    form = await request.post()
    username = str(form.get("username") or "").strip()[:64]
    throttle = throttle_of(dash)
    if await dash.write(lambda db: throttle.unlock(db, username)):
        log.info("log-in back-off for %r lifted by an admin", username)
    raise web.HTTPSeeOther("/users")


def routes() -> list[web.RouteDef]:
    return [web.post("/users/unlock", unlock)]
