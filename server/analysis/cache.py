"""Analysis results kept while the data they count is unchanged.

Counting a year of events costs a few hundred milliseconds on a small station computer; asking again
whether anything changed costs a few index probes. A result is reused while the events, reviews,
deployments and cameras look the same as when it was computed (newest ids, newest change, counts of
the small tables), and for two minutes at most: the effort of a deployment still in the field grows
with the clock, an edited deployment keeps its id, a deleted event leaves the newest ones alone, and
heartbeats (the uptime page) are not among the things compared.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from yaguar.server.dashboard.models import Review
from yaguar.server.deployments.models import Deployment
from yaguar.storage.models import Device, Event

T = TypeVar("T")
KEPT_S = 120.0
KEPT = 64


def database_of(db: Session) -> str:
    """Which database a session reads. Results are kept per database: one process may serve more than
    one station (the tests run several), and their counts can look alike."""
    bind = db.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return engine.url.render_as_string(hide_password=True)


def data_stamp(db: Session) -> tuple[Any, ...]:
    """What changes whenever anything the analyses count changes (one query of index probes)."""
    probes = [
        select(func.max(Event.id)),
        select(func.max(Event.updated_at)),
        select(func.max(Review.id)),
        select(func.max(Deployment.id)),
        select(func.count()).select_from(Deployment),
        select(func.count()).select_from(Device),
    ]
    return tuple(db.execute(select(*(probe.scalar_subquery() for probe in probes))).one())


class ResultCache:
    def __init__(self, kept: int = KEPT, kept_s: float = KEPT_S) -> None:
        self.kept, self.kept_s = kept, kept_s
        self._results: OrderedDict[Hashable, tuple[float, tuple[Any, ...], Any]] = OrderedDict()
        self._lock = threading.Lock()  # pages compute in worker threads

    def get_or_compute(self, db: Session, key: Hashable, compute: Callable[[], T]) -> T:
        stamp = data_stamp(db)
        key = (database_of(db), key)
        with self._lock:
            kept = self._results.get(key)
        if kept is not None and kept[1] == stamp and time.monotonic() - kept[0] < self.kept_s:
            return kept[2]
        result = compute()
        with self._lock:
            self._results[key] = (time.monotonic(), stamp, result)
            self._results.move_to_end(key)
            while len(self._results) > self.kept:
                self._results.popitem(last=False)
        return result
