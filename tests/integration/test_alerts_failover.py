"""Failover between SMS channels (Twilio first, then the GSM modem on Gammu's dummy phone): a dead Twilio
passes each message to the modem within seconds, never both; both down then both back delivers every
alert once per recipient, highest severity first; stale low-severity ones are merged into a summary."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.alert_harness import BIG_CATS, Clock, Harness, alerts_config
from tests.support.fake_twilio import FakeTwilio
from tests.support.gsm_modem import DummyNetwork, FaultyMachine, dummy_section
from yaguar.alerts.models import Alert

PERSON = {"name": "people", "categories": ["person"], "severity": "medium", "recipients": ["ana"]}
PECCARY = {"name": "peccaries", "species": ["Pecari tajacu"], "severity": "low", "recipients": ["ana"]}
CATS = {**BIG_CATS, "recipients": ["ana"]}
FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.3, "max_attempts": 100, "channel_down_hold_s": 0.5}


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def network(tmp_path: Path) -> Iterator[DummyNetwork]:
    FaultyMachine.reset()
    yield DummyNetwork(tmp_path / "modem")
    FaultyMachine.reset()


def both(db_url: str, twilio_url: str, network: DummyNetwork, clock: Any = None, **over: Any) -> Harness:
    config = alerts_config(
        twilio_url,
        rules=over.pop("rules", [CATS]),
        gsm=dummy_section(network.folder),
        sms_channels=["twilio", "gsm"],
        sender={"poll_interval_s": 0.05, "reconcile_after_s": 0.1, **FAST, **over.pop("sender", {})},
        **over,
    )
    return Harness(db_url, config, *([clock] if clock else []), modem_factory=FaultyMachine)


def gsm_bodies() -> list[str]:
    return [str(p["Text"]) for p in FaultyMachine.sent]


@pytest.mark.asyncio
async def test_twilio_5xx_passes_the_alert_to_the_modem_within_seconds(
    db_url: str, twilio: FakeTwilio, network: DummyNetwork
) -> None:
    twilio.down("500")
    h = both(db_url, twilio.base_url, network)
    try:
        started = time.monotonic()
        h.add_event()
        await h.settle(until=lambda: h.alerts()[0].state == "sent")
        took = time.monotonic() - started
        deliveries = h.deliveries()
        assert [(d.channel, d.state) for d in deliveries] == [("twilio", "passed"), ("gsm", "sent")]
        assert "passed to gsm" in (deliveries[0].last_error or "")
        assert took < 5, f"failover took {took:.1f} s"
        assert twilio.messages == [] and len(FaultyMachine.sent) == 1, "one message, on one channel"
        assert h.metric("yaguar_alert_failovers_total", from_channel="twilio", to_channel="gsm") == 1
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_no_internet_passes_to_the_modem(db_url: str, network: DummyNetwork) -> None:
    closed_port = "http://127.0.0.1:9"  # nothing listens: refused, as with the uplink down
    h = both(db_url, closed_port, network)
    try:
        h.add_event()
        await h.settle(until=lambda: h.alerts()[0].state == "sent")
        assert [d.channel for d in h.deliveries() if d.state == "sent"] == ["gsm"]
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_twilio_down_modem_up_every_alert_once_per_recipient(
    db_url: str, twilio: FakeTwilio, network: DummyNetwork
) -> None:
    twilio.down("500")
    # Twilio stays marked down for the whole test (the other tests hold it 0.5 s): on a busy machine the
    # second three events could come after a short hold, and rightly try Twilio again.
    hold = {"channel_down_hold_s": 60}
    h = both(
        db_url, twilio.base_url, network, rules=[BIG_CATS], sender=hold
    )  # ana at once, bob on escalation
    try:
        for index in range(3):
            h.add_event(device=f"cam-{index:02d}")
        await h.settle(until=lambda: all(a.state == "sent" for a in h.alerts()))
        for index in range(3, 6):  # Twilio is known down now: these go straight to the modem
            h.add_event(device=f"cam-{index:02d}")
        await h.settle(until=lambda: all(a.state == "sent" for a in h.alerts()))
        sent = [d for d in h.deliveries() if d.state == "sent"]
        assert Counter((d.alert_id, d.recipient) for d in sent) == {(a, "ana"): 1 for a in range(1, 7)}
        assert {d.channel for d in sent} == {"gsm"}
        assert len(gsm_bodies()) == 6 and len(set(gsm_bodies())) == 6
        assert twilio.messages == []
        assert len(twilio.creates()) == 3, "once Twilio was seen down, later messages did not wait on it"
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_both_down_then_both_back_sends_each_once_highest_severity_first(
    db_url: str, twilio: FakeTwilio, network: DummyNetwork
) -> None:
    twilio.down("500")
    FaultyMachine.network_state = "NoNetwork"
    h = both(db_url, twilio.base_url, network, rules=[CATS, PERSON, PECCARY])
    try:
        h.add_event(species="Pecari tajacu", device="cam-01")
        h.add_event(species=None, category="person", device="cam-02")
        h.add_event(species="Pecari tajacu", device="cam-03")
        h.add_event(device="cam-04")
        h.add_event(species=None, category="person", device="cam-05")
        h.add_event(device="cam-06")
        await h.settle(timeout=10, until=lambda: len(twilio.creates()) >= 2)
        assert not any(d.state == "sent" for d in h.deliveries())
        twilio.up()
        FaultyMachine.network_state = None
        await h.settle(timeout=20, until=lambda: all(a.state == "sent" for a in h.alerts()))
        with h.sessions() as session:
            severity = {a.id: a.severity for a in session.query(Alert)}
        sent = sorted((d for d in h.deliveries() if d.state == "sent"), key=lambda d: (d.claimed_at, d.id))
        assert Counter(d.alert_id for d in sent) == dict.fromkeys(range(1, 7), 1), "each once"
        order = [severity[d.alert_id] for d in sent]
        assert order == sorted(order, key=["high", "medium", "low"].index), order
        bodies = twilio.accepted_bodies() + gsm_bodies()
        assert len(bodies) == 6 and len(set(bodies)) == 6, "no message went out on both channels"
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_stale_low_severity_backlog_is_merged_into_one_summary(
    db_url: str, twilio: FakeTwilio, network: DummyNetwork
) -> None:
    twilio.down("500")
    FaultyMachine.network_state = "NoNetwork"
    clock = Clock()
    h = both(db_url, twilio.base_url, network, clock, rules=[CATS, PECCARY], backlog={"stale_after_s": 600})
    try:
        for index in range(5):
            h.add_event(species="Pecari tajacu", device=f"cam-{index:02d}")
        h.add_event(device="cam-09")  # a jaguar: high, never merged
        await h.settle(timeout=10, until=lambda: len(twilio.creates()) >= 2)
        clock.advance(700)
        twilio.up()
        FaultyMachine.network_state = None
        await h.settle(timeout=20, until=lambda: len(twilio.accepted_bodies()) + len(gsm_bodies()) >= 2)
        await h.settle(timeout=3)
        alerts = h.alerts()
        summary = [a for a in alerts if a.kind == "backlog"]
        assert len(summary) == 1 and summary[0].event_count == 5
        assert [a.state for a in alerts if a.rule == "peccaries"] == ["merged"] * 5
        bodies = twilio.accepted_bodies() + gsm_bodies()
        assert len(bodies) == 2, "one jaguar alert and one summary, not six messages"
        assert any("5 avisos atrasados" in b and "5 Pecari tajacu" in b for b in bodies), bodies
        assert h.metric("yaguar_alert_backlog_merged_total") == 5
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_escalation_on_every_channel_when_asked(
    db_url: str, twilio: FakeTwilio, network: DummyNetwork
) -> None:
    clock = Clock()
    h = both(db_url, twilio.base_url, network, clock, rules=[BIG_CATS], escalation={"all_channels": True})
    try:
        h.add_event()
        await h.settle()
        clock.advance(h.config.alerts.escalation.after_s + 1)
        await h.settle()
        bob = [(d.channel, d.state) for d in h.deliveries() if d.recipient == "bob"]
        assert sorted(bob) == [("gsm", "sent"), ("twilio", "sent")]
        ana = [(d.channel, d.state) for d in h.deliveries() if d.recipient == "ana"]
        assert ana == [("twilio", "sent")], "the first alert goes on one channel only"
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_a_long_outage_does_not_use_up_the_attempts(
    db_url: str, twilio: FakeTwilio, network: DummyNetwork
) -> None:
    twilio.down("500")
    FaultyMachine.network_state = "NoNetwork"
    h = both(db_url, twilio.base_url, network, sender={"max_attempts": 2, "backoff_max_s": 0.05})
    try:
        h.add_event()
        await h.settle(timeout=10, until=lambda: sum(d.attempts for d in h.deliveries()) >= 6)
        assert not any(d.state in ("sent", "failed") for d in h.deliveries()), "waits, not failed"
        FaultyMachine.network_state = None  # the modem finds a network again
        await h.settle(until=lambda: h.alerts()[0].state == "sent")
        assert [d.channel for d in h.deliveries() if d.state == "sent"] == ["gsm"]
    finally:
        await h.close()
