"""The device watch on the alert sender's loop: every ``check_interval_s`` one look at the cameras in a
worker thread (its own transaction), then the sender is woken to deliver what was written."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from yaguar.alerts.device_watch import DeviceWatch

log = logging.getLogger(__name__)


class DeviceWatchLoop:
    def __init__(
        self,
        watch: DeviceWatch,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        wake: Callable[[], None],
    ) -> None:
        self.watch = watch
        self.sessions = sessions
        self.clock = clock
        self.wake = wake

    def check_once(self) -> int:
        with self.sessions() as session, session.begin():
            written = len(self.watch.check(session, self.clock()))
        if written:
            self.wake()
        return written

    async def run(self, stop: asyncio.Event) -> None:
        rules = self.watch.rules
        if not rules.enabled:
            log.info("device alerts are off ([alerts.devices] enabled = false)")
            return
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.check_once)
            except OperationalError as exc:  # a busy or lost database: the next look tries again
                log.warning("device alerts: the database did not answer (%s); trying again", exc.orig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rules.check_interval_s)
