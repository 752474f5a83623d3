"""One alert per event, and one SMS per alert, with two pipeline workers (`yaguar-station worker`, real
processes, each with its own alert sender) on one PostgreSQL, sending through a fake Twilio on 127.0.0.1.

Every burst has an animal walking through it, so every event matches both rules. Small batches and more
cameras than one worker holds at once spread the cameras over the workers (checked from a lease log the
database keeps), and a short event gap makes the workers close idle events while others
are still storing frames: an event is written to by several workers, and each of them runs the alert hook
on it. Whether a slow worker splits a burst into two events is not the point here (the killed-worker test
checks grouping); each event, however many there are, must alert once per rule and be sent once."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio
from tests.support.workers import (
    Workload,
    progress,
    release_held,
    start_worker,
    store_bursts,
    worker_config,
)
from yaguar.alerts.models import Alert, AlertTrigger, Delivery
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.models import Event

# The small animal pasted into the frames is taken for a person by the COCO detector: both rules take both.
RULES = {"seen": ("ana", "+573001112233", 0.05), "seen-surely": ("bob", "+573004445566", 0.1)}


def alert_sections(twilio_url: str) -> dict[str, dict[str, Any]]:
    twilio = {
        "account_sid": ACCOUNT_SID,
        "from_number": FROM_NUMBER,
        "api_base_url": twilio_url,
        "request_timeout_s": 5.0,
    }
    alerts = {
        "enabled": True,
        "flood": {"cooldown_s": 0, "recipient_hourly_cap": 1000, "max_event_age_s": 86400},
        "sender": {"poll_interval_s": 0.1, "backoff_initial_s": 0.05},
        "twilio": twilio,
        "recipients": [{"name": person, "phone": phone} for person, phone, _ in RULES.values()],
        "rules": [
            {
                "name": rule,
                "categories": ["animal", "person"],
                "min_confidence": confidence,
                "recipients": [person],
            }
            for rule, (person, _, confidence) in RULES.items()
        ],
    }
    look = {"closer_input": [0, 0], "motion_crops": False}  # one detector pass a frame
    return {"pipeline": {"look": look}, "alerts": alerts}


# Every lease a worker takes, noted by the database itself: a quick run holds each lease for milliseconds,
# too briefly to be seen by polling the media table.
LEASE_LOG = [
    "CREATE TABLE lease_log (owner text NOT NULL)",
    "CREATE FUNCTION note_lease() RETURNS trigger AS $$ BEGIN INSERT INTO lease_log VALUES (NEW.lease_owner);"
    " RETURN NEW; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER note_lease AFTER UPDATE OF lease_owner ON media FOR EACH ROW"
    " WHEN (NEW.lease_owner IS NOT NULL) EXECUTE FUNCTION note_lease()",
]


def running(logs: list[Path]) -> str | None:
    started = [log for log in logs if log.exists() and "Pipeline worker running" in log.read_text()]
    return None if len(started) == len(logs) else f"{len(started)} of {len(logs)} running"


def wait_until(what: str, condition: Callable[[], str | None], timeout: float) -> None:
    """Wait until ``condition`` answers None; otherwise it says what is still missing."""
    deadline = time.monotonic() + timeout
    while (missing := condition()) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {missing}")
        time.sleep(0.2)


def test_two_workers_alert_once_per_event_and_rule(
    pg_url: str, tmp_path: Path, images: Path, models_dir: Path
) -> None:
    # More cameras than one worker holds at once (its queue and batches, about 12 frames: 4 bursts), since
    # a camera is analysed by one worker at a time: with 4 cameras, on a quiet machine the first worker
    # held them all and the second had nothing to do.
    load = Workload(cameras=8, bursts=2, frames=3, moving_every=1)  # every burst has an animal
    media = tmp_path / "media"
    recent = datetime.now(UTC) - timedelta(minutes=30)  # alerts are only sent for recent events
    store_bursts(pg_url, media, images, load, state="held", start=recent)  # until all run
    engine = make_db_engine(pg_url)
    with engine.begin() as connection:
        for statement in LEASE_LOG:
            connection.execute(text(statement))
    secret = {"YAGUAR_TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    with FakeTwilio() as twilio:
        config = worker_config(
            tmp_path / "worker.toml",
            pg_url,
            media,
            models_dir,
            10,
            batch_size=3,
            gap_s=3,
            more=alert_sections(twilio.base_url),
            env=secret,
        )
        logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
        workers = [start_worker(config, log, env_more=secret) for log in logs]
        wait_until("the workers to start", lambda: running(logs), timeout=60)
        release_held(pg_url, "held")
        sessions = make_session_factory(engine)

        def missing() -> str | None:
            """What is not yet done: frames to analyse, events to close, SMS to send."""
            states = progress(pg_url)
            with sessions() as session:
                open_events = len(session.scalars(select(Event.id).where(Event.closed.is_(False))).all())
                deliveries = len(session.scalars(select(Delivery.id)).all())
            if states.get("pending", 0) or open_events or not deliveries or len(twilio.messages) < deliveries:
                return f"{states}, {open_events} open events, {deliveries} SMS planned, {len(twilio.messages)} sent"
            return None

        try:
            wait_until("frames analysed, events closed and SMS sent", missing, timeout=60)
            time.sleep(1.0)  # an SMS sent twice would arrive by now
        finally:
            for worker in workers:
                worker.terminate()
            codes = [worker.wait(30) for worker in workers]
        with sessions() as session:
            events = session.scalars(select(Event)).all()
            alerts = session.scalars(select(Alert)).all()
            triggers = session.scalars(select(AlertTrigger)).all()
            deliveries = session.scalars(select(Delivery)).all()
            owners = set(session.scalars(text("SELECT DISTINCT owner FROM lease_log")))
        engine.dispose()
    texts = [log.read_text() for log in logs]
    assert codes == [0, 0], texts
    assert not any("Twilio API Request" in text for text in texts), "each SMS's headers in the log"
    states = progress(pg_url)
    assert states.get("failed", 0) == 0, (states, [t[-3000:] for t in texts])

    # Each event with an animal alerted once per rule, and nothing else alerted.
    animal_events = {e.id for e in events if e.category in ("animal", "person")}
    assert len(animal_events) >= load.cameras * load.bursts, [(e.id, e.category) for e in events]
    per_rule_event = Counter((a.rule, a.event_id) for a in alerts)
    assert set(per_rule_event.values()) == {1}, [k for k, n in per_rule_event.items() if n > 1]
    assert set(per_rule_event) == {(rule, e) for rule in RULES for e in animal_events}
    assert {a.kind for a in alerts} == {"first"}
    assert sorted((t.rule, t.event_id, t.alert_id) for t in triggers) == sorted(
        (a.rule, a.event_id, a.id) for a in alerts
    )

    # One delivery per alert (one recipient per rule), sent once, and Twilio got exactly those.
    per_alert = Counter(d.alert_id for d in deliveries)
    assert set(per_alert.values()) == {1} and set(per_alert) == {a.id for a in alerts}
    assert {d.state for d in deliveries} == {"sent"}
    creates = twilio.creates()
    assert len(creates) == len(deliveries) == len(twilio.messages)
    assert sorted(m["sid"] for m in twilio.messages) == sorted(str(d.provider_sid) for d in deliveries)
    bodies = twilio.accepted_bodies()
    assert len(set(bodies)) == len(bodies), "an SMS went out twice"
    assert len(owners) >= 2, f"the frames were not shared between the workers: {owners}"
