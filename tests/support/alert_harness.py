"""Alerts wired to a real SQLite file, without the rest of the station: the outbox hook called inside an
event transaction exactly as the pipeline calls it, the real sender and channels, and a clock the test
can move (flood windows and escalation without sleeping)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER
from yaguar.alerts.deliveries import DeliveryPlanner
from yaguar.alerts.metrics import AlertMetrics
from yaguar.alerts.models import Alert, Delivery
from yaguar.alerts.outbox import Outbox
from yaguar.alerts.sender import Sender
from yaguar.server.alerts_component import make_channels
from yaguar.server.config import StationConfig, config_from_dict
from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory, utcnow
from yaguar.storage.models import Device, Event

PUBLIC_URL = "http://st.lan"
RANGERS = [
    {"name": "ana", "phone": "+573001112233", "language": "es", "escalation_level": 0},
    {"name": "bob", "phone": "+573004445566", "language": "en", "escalation_level": 1},
]
BIG_CATS = {
    "name": "big-cats",
    "species": ["Panthera onca", "Puma concolor", "Leopardus pardalis"],
    "min_confidence": 0.6,
    "severity": "high",
    "recipients": ["ana", "bob"],
}


def twilio_section(base_url: str, **over: Any) -> dict[str, Any]:
    return {
        "account_sid": ACCOUNT_SID,
        "from_number": FROM_NUMBER,
        "api_base_url": base_url,
        "request_timeout_s": 3.0,  # tests of a hang set less; a loaded CI box must not fake one
        "validity_period_s": 600,
        **over,
    }


def alerts_config(twilio_url: str | None = None, gsm_pin: str | None = None, **over: Any) -> StationConfig:
    alerts: dict[str, Any] = {
        "enabled": True,
        "recipients": RANGERS,
        "rules": [BIG_CATS],
        "sender": {"backoff_initial_s": 0.05, "poll_interval_s": 0.05, "reconcile_after_s": 0.1},
    }
    if twilio_url:
        alerts["twilio"] = twilio_section(twilio_url)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(alerts.get(key), dict):
            alerts[key] = {**alerts[key], **value}
        else:
            alerts[key] = value
    return config_from_dict(
        {"alerts": alerts, "http": {"public_url": PUBLIC_URL}},
        env={"YAGUAR_TWILIO_AUTH_TOKEN": AUTH_TOKEN, **({"YAGUAR_GSM_PIN": gsm_pin} if gsm_pin else {})},
    )


def add_event(
    sessions: sessionmaker[Session],
    hooks: Iterable[Callable[[Session, Event], None]],
    started_at: datetime,
    species: str | None = "Panthera onca",
    device: str = "cam-01",
    device_name: str | None = None,
    category: str = "animal",
    confidence: float = 0.9,
    count: int = 1,
    offset_min: int = -300,
) -> int:
    """Commit one event (and its camera, named ``device_name`` or "Sendero NN", when new) and call
    ``hooks`` inside its transaction, as the pipeline does; its id."""
    with sessions.begin() as session:
        if session.get(Device, device) is None:
            session.add(Device(id=device, name=device_name or f"Sendero {device[-2:]}"))
        event = Event(
            device_id=device,
            started_at=started_at,
            ended_at=started_at,
            utc_offset_min=offset_min,
            frame_count=3,
            category=category,
            species=species,
            count=count,
            confidence=confidence,
            closed=False,
        )
        session.add(event)
        session.flush()
        for hook in hooks:
            hook(session, event)
        return event.id


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 26, 7, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Harness:
    def __init__(
        self,
        db_url: str,
        config: StationConfig,
        clock: Callable[[], datetime] = utcnow,
        sender_busy_timeout_ms: int | None = None,
        modem_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.engine = make_db_engine(db_url)
        upgrade(self.engine)
        self.sessions = make_session_factory(self.engine)
        # the component gives its sender a connection that fails fast on a taken lock; tests may too
        self.sender_engine = (
            make_db_engine(db_url, busy_timeout_ms=sender_busy_timeout_ms) if sender_busy_timeout_ms else None
        )
        sender_sessions = make_session_factory(self.sender_engine) if self.sender_engine else self.sessions
        self.registry = CollectorRegistry()
        self.metrics = AlertMetrics(self.registry)
        planner = DeliveryPlanner(config.alerts, config.http.public_url, self.metrics)
        self.channels = make_channels(config.alerts, modem_factory)
        self.sender = Sender(config.alerts, sender_sessions, planner, self.channels, self.metrics, self.clock)
        self.outbox = Outbox(config.alerts, planner, self.metrics, self.clock, wake=self.sender.wake)
        self.hooks = [self.outbox.on_event]

    def add_event(
        self,
        species: str | None = "Panthera onca",
        device: str = "cam-01",
        category: str = "animal",
        confidence: float = 0.9,
        count: int = 1,
        offset_min: int = -300,
        started_at: datetime | None = None,
    ) -> int:
        """Commit one event and call the hooks inside its transaction, as the pipeline does."""
        return add_event(
            self.sessions,
            self.hooks,
            started_at or self.clock(),
            species=species,
            device=device,
            category=category,
            confidence=confidence,
            count=count,
            offset_min=offset_min,
        )

    def alerts(self) -> list[Alert]:
        with self.sessions() as session:
            rows = session.scalars(select(Alert).order_by(Alert.id)).all()
            for alert in rows:
                _ = alert.deliveries  # loaded while the session is open
            return list(rows)

    def deliveries(self) -> list[Delivery]:
        with self.sessions() as session:
            return list(session.scalars(select(Delivery).order_by(Delivery.id)).all())

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def settle(self, timeout: float = 10.0, until: Any = None) -> None:
        """Run sender passes until nothing is due or in flight (or ``until()`` holds)."""
        loop = asyncio.get_running_loop()
        self.sender.bind_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            started = await self.sender.step()
            await self.sender.drain(timeout=max(deadline - loop.time(), 0.01))
            started += self.sender.flush()  # write the answers now, not on the next pass
            if until is not None and until():
                return
            if until is None and started == 0 and not self.sender.in_flight:
                return
            await asyncio.sleep(0.02)
        if until is not None:
            raise AssertionError("the sender did not reach the expected state in time")

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        self.engine.dispose()
        if self.sender_engine is not None:
            self.sender_engine.dispose()
