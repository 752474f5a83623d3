"""What every part of the station shares: config, database, media root, metrics, hooks, and the MQTT
link for messages to agents. Components (pipeline, alerts, dashboard) are built from it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from .config import StationConfig

if TYPE_CHECKING:
    from aiohttp import web

    from yaguar.storage.models import Event

# Called inside the transaction that creates or changes an event, so that what it writes (an alert in
# the outbox) commits or rolls back with the event.
EventInTransaction = Callable[[Session, "Event"], None]
# Called after a commit, from the thread that committed; must be quick and thread-safe.
AfterCommit = Callable[[list[int]], None]


@dataclass
class StationHooks:
    event_in_transaction: list[EventInTransaction] = field(default_factory=list)
    events_committed: list[AfterCommit] = field(default_factory=list)  # event ids
    media_committed: list[AfterCommit] = field(default_factory=list)  # media ids of newly stored frames

    @staticmethod
    def fire(callbacks: list[AfterCommit], ids: list[int]) -> None:
        for callback in callbacks:
            callback(ids)


class AgentLink(Protocol):
    """Sends messages to agents over the station's MQTT connection."""

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None: ...


@dataclass
class StationContext:
    config: StationConfig
    engine: Engine
    session_factory: sessionmaker[Session]
    media_root: Path
    metrics: CollectorRegistry
    hooks: StationHooks
    agents: AgentLink | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    # Extra parts of /healthz by name (e.g. alerts: SMS channels and the GSM modem); quick, thread-safe.
    health: dict[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)
    # Set by the alerts component: send a test SMS to a number (through one channel, or each in turn);
    # blocking, returns what each channel answered (``yaguar.alerts.test_sms.TestAttempt``).
    send_test_sms: Callable[[str, str | None], list[Any]] | None = None


class Component(Protocol):
    """A part of the station with its own threads or tasks (pipeline worker, alert sender, dashboard)."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def setup_routes(self, app: web.Application) -> None:
        """Add HTTP routes (pages, callbacks) to the station's aiohttp app; may do nothing."""
