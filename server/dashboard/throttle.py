"""Log-in throttling: after a few failures for a user name, or from an address, each next attempt waits
twice as long as the one before (up to a ceiling). A waiting attempt is answered at once, without
checking the password, and the page says how long to wait. A right password after the wait works, and
an admin can lift a user's wait from the Users page.

Kept in the station's memory: log-ins reach the one web server of a station, and a restart forgetting
the counts costs an attacker a restart, which they cannot cause from the log-in page.
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .core import dashboard_of
from .guard import requires

if TYPE_CHECKING:
    from yaguar.server.dashboard_config import DashboardConfig

    from .core import Dashboard

log = logging.getLogger(__name__)


@dataclass
class _Record:
    failures: int = 0
    until: float = 0.0  # monotonic time before which attempts are refused


class LoginThrottle:
    def __init__(
        self, free: int, base_s: float, max_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.free, self.base_s, self.max_s, self.clock = free, base_s, max_s, clock
        self._users: dict[str, _Record] = {}
        self._addresses: dict[str, _Record] = {}

    def wait_s(self, username: str, address: str) -> float:
        """Seconds before this user name may try again from this address (0: now)."""
        now = self.clock()
        records = (self._users.get(username.lower()), self._addresses.get(address))
        return max((r.until - now for r in records if r is not None), default=0.0)

    def failed(self, username: str, address: str) -> float:
        """Count a wrong password; returns the back-off it starts (0 while failures are still free)."""
        backoff = 0.0
        for table, key in ((self._users, username.lower()), (self._addresses, address)):
            record = table.setdefault(key, _Record())
            record.failures += 1
            if record.failures > self.free:
                delay = min(self.max_s, self.base_s * 2 ** (record.failures - self.free - 1))
                record.until = self.clock() + delay
                backoff = max(backoff, delay)
        return backoff

    def succeeded(self, username: str) -> None:
        """The user proved who they are: their name's count starts again (the address's does not)."""
        self._users.pop(username.lower(), None)

    def unlock(self, username: str) -> bool:
        return self._users.pop(username.lower(), None) is not None

    def locked_users(self) -> list[tuple[str, int, int]]:
        """(user name, failures, seconds still to wait) of every user name with failures counted."""
        now = self.clock()
        return sorted((name, r.failures, max(0, math.ceil(r.until - now))) for name, r in self._users.items())


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
    wait = throttle_of(dash).wait_s(username, request.remote or "?")
    if wait <= 0:
        return None
    dash.metrics.logins.labels("throttled").inc()
    log.warning("log-in for %r from %s refused: back-off, %.0f s left", username, request.remote, wait)
    response: web.StreamResponse = await render(status=429, wait_s=math.ceil(wait))
    response.headers["Retry-After"] = str(math.ceil(wait))
    return response


def record_failure(request: web.Request, username: str) -> int:
    """After a wrong password: count it; returns the seconds the next attempt must wait (0: none)."""
    dash = dashboard_of(request)
    backoff = throttle_of(dash).failed(username, request.remote or "?")
    if backoff:
        log.warning("failed log-in for %r from %s: next attempt in %.1f s", username, request.remote, backoff)
    return math.ceil(backoff)


@requires("admin")
async def unlock(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request)
    form = await request.post()
    username = str(form.get("username") or "").strip()[:64]
    if throttle_of(dash).unlock(username):
        log.info("log-in back-off for %r lifted by an admin", username)
    raise web.HTTPSeeOther("/users")


def routes() -> list[web.RouteDef]:
    return [web.post("/users/unlock", unlock)]
