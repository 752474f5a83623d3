"""The station's own health, as systemd's watchdog sees it: the service is fed ``WATCHDOG=1`` only while
the database answers, the broker connection is up (or was, within ``[mqtt] unhealthy_after_s``: the
MQTT client reconnects by itself; a restart helps a client that is stuck) and every component's threads are alive and making progress. A station that
hangs is then restarted by systemd instead of sitting there."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sqlalchemy import text

from yaguar.notify import Notifier

if TYPE_CHECKING:
    from .station import Station

log = logging.getLogger(__name__)

CHECK_EVERY_S = 5.0  # how often health is checked when systemd asks for no watchdog


@runtime_checkable
class Checked(Protocol):
    """A component that can say what is wrong with it (None: nothing)."""

    def health_problem(self) -> str | None: ...


class StationHealth:
    def __init__(self, station: Station) -> None:
        self.station = station
        self._broker_seen = time.monotonic()

    def problems(self) -> list[str]:
        """What is wrong now, in plain words; empty when healthy."""
        problems = []
        try:
            with self.station.context.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure to answer is the problem; its text says which
            problems.append(f"database does not answer: {' '.join(str(exc).split())[:160]}")
        ingest = self.station.ingest
        if ingest is not None:
            now = time.monotonic()
            if ingest.link.connected:
                self._broker_seen = now
            elif now - self._broker_seen > self.station.config.mqtt.unhealthy_after_s:
                problems.append(f"no broker connection for {now - self._broker_seen:.0f} s")
        for component in self.station.components:
            if isinstance(component, Checked) and (problem := component.health_problem()):
                problems.append(problem)
        return problems


def serve(station: Station, stop: threading.Event) -> None:
    """Tell systemd the station is ready, feed its watchdog while healthy, say why not when not."""
    notifier = Notifier()
    health = StationHealth(station)
    notifier.notify("READY=1")
    every = min(CHECK_EVERY_S, notifier.watchdog_s / 3) if notifier.watchdog_s else CHECK_EVERY_S
    reported: list[str] = []
    while not stop.wait(every):
        problems = health.problems()
        if not problems:
            notifier.notify("WATCHDOG=1")
        if problems != reported:
            if problems:
                log.error("station unhealthy (the watchdog is not fed): %s", "; ".join(problems))
            else:
                log.info("station healthy again")
            notifier.notify("STATUS=" + ("; ".join(problems) if problems else "running"))
            reported = problems
    notifier.notify("STOPPING=1")
