"""The outbox on a real SQLite file with the fake Twilio API: flood control, quiet hours, the hourly
cap, repeated hooks on one event, and the alert committing (or rolling back) with its event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.support.alert_harness import BIG_CATS, Clock, Harness, alerts_config
from tests.support.fake_twilio import FakeTwilio
from yaguar.alerts.models import Alert
from yaguar.storage.models import Event


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.mark.asyncio
async def test_hundred_detections_in_a_minute_give_one_sms_and_one_summary(
    db_url: str, twilio: FakeTwilio
) -> None:
    clock = Clock()
    config = alerts_config(
        twilio.base_url,
        rules=[{**BIG_CATS, "recipients": ["ana"]}],
        flood={"cooldown_s": 300, "group_window_s": 120},
    )
    h = Harness(db_url, config, clock)
    try:
        # Each detection is its own event (bursts further apart than the pipeline's event gap); one
        # event updated many times alerts once (test_updated_event_alerts_once_...).
        for i in range(100):
            h.add_event(confidence=0.8 + (i % 10) / 100)
            await h.settle()
            clock.advance(0.6)  # 100 detections over 60 s
        assert len(twilio.creates()) == 1, "only the first detection is sent at once"
        clock.advance(121)  # the summary's window closes
        await h.settle()
        creates = twilio.creates()
        assert len(creates) == 2
        first, summary = (c.form["Body"] for c in creates)
        assert first.startswith("Yaguar: jaguar en Sendero 01 02:00 80% http://st.lan/e/1 Responda OK ")
        assert summary.startswith(
            "Yaguar: 99 mas jaguar en Sendero 01 02:00-02:00 max 89% http://st.lan/e/100"
        )
        assert all(c.form["To"] == "+573001112233" and c.form["ValidityPeriod"] == "600" for c in creates)
        alerts = h.alerts()
        assert [(a.kind, a.event_count, a.state) for a in alerts] == [
            ("first", 1, "sent"),
            ("summary", 99, "sent"),
        ]
        assert h.metric("yaguar_alerts_held_back_total", reason="grouped") == 99
        # after the cooldown the next detection is an immediate alert again
        clock.advance(300)
        h.add_event()
        await h.settle()
        assert len(twilio.creates()) == 3
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_quiet_hours_hold_back_low_severity_and_not_high(db_url: str, twilio: FakeTwilio) -> None:
    clock = Clock()  # 07:00 UTC = 02:00 at a camera on UTC-5
    people = {"name": "people-at-night", "categories": ["person"], "severity": "low", "recipients": ["ana"]}
    config = alerts_config(
        twilio.base_url,
        rules=[{**BIG_CATS, "recipients": ["ana"]}, people],
        quiet_hours={"start": "22:00", "end": "06:00", "override_severity": "high"},
    )
    h = Harness(db_url, config, clock)
    try:
        h.add_event(species=None, category="person", device="cam-02")
        h.add_event(species="Panthera onca", device="cam-03")
        await h.settle()
        bodies = [c.form["Body"] for c in twilio.creates()]
        assert len(bodies) == 1 and bodies[0].startswith("Yaguar: jaguar en Sendero 03")
        states = {a.rule: (a.state, a.note) for a in h.alerts()}
        assert states == {"people-at-night": ("suppressed", "quiet hours"), "big-cats": ("sent", None)}
        assert h.metric("yaguar_alerts_held_back_total", reason="quiet_hours") == 1
        # at 07:00 local the same person is reported
        clock.advance(5 * 3600)
        h.add_event(species=None, category="person", device="cam-02")
        await h.settle()
        assert twilio.creates()[-1].form["Body"].startswith("Yaguar: persona en Sendero 02 07:00")
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_hourly_cap_per_recipient(db_url: str, twilio: FakeTwilio) -> None:
    clock = Clock()
    config = alerts_config(
        twilio.base_url,
        rules=[{**BIG_CATS, "recipients": ["ana"]}],
        flood={"cooldown_s": 0, "recipient_hourly_cap": 2},
    )
    h = Harness(db_url, config, clock)
    try:
        for device in ("cam-01", "cam-02", "cam-03"):
            h.add_event(device=device)
            clock.advance(60)
        await h.settle()
        assert len(twilio.creates()) == 2
        assert [d.state for d in h.deliveries()] == ["sent", "sent", "capped"]
        assert h.alerts()[2].state == "suppressed"
        clock.advance(3600)  # an hour later the cap has room again
        h.add_event(device="cam-04")
        await h.settle()
        assert len(twilio.creates()) == 3
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_updated_event_alerts_once_and_rejects_nonmatching(db_url: str) -> None:
    h = Harness(db_url, alerts_config(None))  # no Twilio: SMS go to the log channel
    try:
        event_id = h.add_event(confidence=0.3)  # below min_confidence: no alert yet
        assert h.alerts() == []
        with h.sessions.begin() as session:  # the pipeline raises confidence as frames arrive
            event = session.get(Event, event_id)
            assert event is not None
            for confidence in (0.7, 0.8, 0.95):
                event.confidence = confidence
                for hook in h.hooks:
                    hook(session, event)
        alerts = h.alerts()
        assert len(alerts) == 1 and alerts[0].event_id == event_id
        assert h.metric("yaguar_alerts_held_back_total", reason="repeated") == 2
        h.add_event(species="Didelphis marsupialis")  # an opossum: no rule
        h.add_event(started_at=h.clock() - timedelta(hours=3), device="cam-09")  # a late upload
        assert len(h.alerts()) == 1
        assert h.metric("yaguar_alerts_held_back_total", reason="stale") == 1
        await h.settle()
        assert [(d.channel, d.state) for d in h.deliveries()] == [("log", "sent")]
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_alert_rolls_back_with_its_event(db_url: str) -> None:
    h = Harness(db_url, alerts_config(None))

    def fail_after_hooks(session: object, event: object) -> None:
        raise RuntimeError("the pipeline's transaction fails after the alert hook")

    h.hooks.append(fail_after_hooks)
    try:
        with pytest.raises(RuntimeError):
            h.add_event()
        assert h.alerts() == []
        with h.sessions() as session:
            assert session.query(Event).count() == 0
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_the_sender_is_woken_after_the_commit_not_before(db_url: str) -> None:
    h = Harness(db_url, alerts_config(None))
    calls: list[int] = []

    def wake() -> None:  # the alert must be visible to the sender when it is woken
        with h.sessions() as session:
            calls.append(len(session.scalars(select(Alert)).all()))

    h.outbox.wake = wake
    try:
        h.add_event(device="cam-01")
        h.add_event(device="cam-02")
        h.add_event(species="Didelphis marsupialis")  # no alert, no wake
        assert calls == [1, 2]
    finally:
        await h.close()
