"""The sender against the fake Twilio API: retries on 429 and 5xx with every alert sent exactly once, an
ambiguous timeout left 'unknown' and settled by asking Twilio, a station killed between commit and send
(and while sending) that sends after restart, once; the webhook channel."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import select

from tests.support.alert_harness import BIG_CATS, Harness, alerts_config
from tests.support.fake_twilio import FakeTwilio
from yaguar.alerts.models import Delivery

REPO = Path(__file__).resolve().parents[2]
ANA_ONLY = [{**BIG_CATS, "recipients": ["ana"]}]


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


def ack_codes(bodies: list[str]) -> Counter[str]:
    return Counter(body.rsplit(" ", 1)[-1] for body in bodies)


@pytest.mark.asyncio
async def test_429_and_500_are_retried_and_each_alert_sent_once(db_url: str, twilio: FakeTwilio) -> None:
    twilio.plan("429", "500")
    h = Harness(db_url, alerts_config(twilio.base_url, rules=ANA_ONLY))
    try:
        for device in ("cam-01", "cam-02", "cam-03"):
            h.add_event(device=device)
        await h.settle(until=lambda: all(a.state == "sent" for a in h.alerts()))
        statuses = [c.status for c in twilio.creates()]
        assert sorted(statuses) == [201, 201, 201, 429, 500]
        codes = ack_codes(twilio.accepted_bodies())
        assert sorted(codes) == sorted(a.ack_code for a in h.alerts()) and set(codes.values()) == {1}
        assert sorted(d.attempts for d in h.deliveries()) in ([1, 1, 3], [1, 2, 2])
        assert h.metric("yaguar_alert_send_attempts_total", channel="twilio", outcome="retry") == 2
        sids = {m["sid"] for m in twilio.messages}
        assert {d.provider_sid for d in h.deliveries()} == sids
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_invalid_number_fails_without_retry(db_url: str, twilio: FakeTwilio) -> None:
    twilio.plan("400")
    h = Harness(db_url, alerts_config(twilio.base_url, rules=ANA_ONLY))
    try:
        h.add_event()
        await h.settle(until=lambda: h.alerts()[0].state == "failed")
        assert len(twilio.creates()) == 1
        assert "21211" in (h.deliveries()[0].last_error or "")
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_hang_leaves_unknown_and_reconciliation_settles_it(db_url: str, twilio: FakeTwilio) -> None:
    twilio.plan("hang")  # Twilio creates the message but the answer never comes
    h = Harness(db_url, alerts_config(twilio.base_url, rules=ANA_ONLY, twilio={"request_timeout_s": 0.5}))
    try:
        h.add_event()
        await h.sender.step()
        await h.sender.drain()
        h.sender.flush()
        assert [(d.state, d.provider_sid) for d in h.deliveries()] == [("unknown", None)]
        assert h.alerts()[0].state == "unknown"
        await h.settle(until=lambda: h.alerts()[0].state == "sent")
        assert len(twilio.creates()) == 1, "an ambiguous timeout must never be retried blindly"
        assert h.deliveries()[0].provider_sid == twilio.messages[0]["sid"]
        lists = [r for r in twilio.requests if r.method == "GET"]
        assert lists and lists[0].query["To"] == "+573001112233" and "DateSent>" in lists[0].query
        assert h.metric("yaguar_alert_reconciliations_total", outcome="sent") == 1
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_hang_before_create_is_resent_once_twilio_never_had_it(db_url: str, twilio: FakeTwilio) -> None:
    twilio.plan("hang_before")
    config = alerts_config(
        twilio.base_url,
        rules=ANA_ONLY,
        sender={"reconcile_give_up_s": 1.5},
        twilio={"request_timeout_s": 0.5},
    )
    h = Harness(db_url, config)
    try:
        h.add_event()
        await h.settle(until=lambda: h.alerts()[0].state == "sent", timeout=15)
        assert [c.status for c in twilio.creates()] == [0, 201]  # the first one never got an answer
        assert len(twilio.messages) == 1
        assert h.metric("yaguar_alert_reconciliations_total", outcome="absent") >= 1
    finally:
        await h.close()


CHILD = """
import asyncio, sys, time
from tests.support.alert_harness import BIG_CATS, Harness, alerts_config
db_url, base_url, mode = sys.argv[1:4]
rules = [{**BIG_CATS, "recipients": ["ana"]}]
h = Harness(db_url, alerts_config(base_url, rules=rules, twilio={"request_timeout_s": 60}))
h.add_event()
if mode == "sending":
    async def claim_and_send():
        h.sender.bind_loop()
        await h.sender.step()  # commits 'sending', then the request hangs at the fake server
        await asyncio.sleep(0.5)  # the request reaches the fake; its answer never comes
        print("sending", flush=True)
        await asyncio.sleep(600)
    asyncio.run(claim_and_send())
print("committed", flush=True)
time.sleep(600)
"""


def run_and_kill(db_url: str, twilio: FakeTwilio, mode: str, wait_for: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db_url, twilio.base_url, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        assert line == wait_for, f"child said {line!r}"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)


@pytest.mark.asyncio
async def test_killed_between_commit_and_send_sends_after_restart_once(
    db_url: str, twilio: FakeTwilio
) -> None:
    run_and_kill(db_url, twilio, "committed", "committed")
    assert twilio.creates() == []
    h = Harness(db_url, alerts_config(twilio.base_url, rules=ANA_ONLY))  # the restarted station
    try:
        assert h.sender.recover() == 0
        await h.settle(until=lambda: h.alerts()[0].state == "sent")
        await h.settle()
        assert len(twilio.creates()) == 1 and len(twilio.messages) == 1
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_killed_while_sending_asks_twilio_and_does_not_send_twice(
    db_url: str, twilio: FakeTwilio
) -> None:
    twilio.plan("hang")
    run_and_kill(db_url, twilio, "sending", "sending")
    assert len(twilio.creates()) == 1
    h = Harness(db_url, alerts_config(twilio.base_url, rules=ANA_ONLY))
    try:
        assert h.sender.recover() == 1
        assert h.deliveries()[0].state == "unknown"
        await h.settle(until=lambda: h.alerts()[0].state == "sent")
        assert len(twilio.creates()) == 1, "the message Twilio already had was not sent again"
        assert h.deliveries()[0].provider_sid == twilio.messages[0]["sid"]
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_webhook_retries_with_one_idempotency_key(db_url: str) -> None:
    received: list[tuple[str, dict[str, object]]] = []
    answers = [500, 200]

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers["Idempotency-Key"], await request.json()))
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    rule = {**BIG_CATS, "recipients": ["ana"], "channels": ["webhook"]}
    h = Harness(db_url, alerts_config(None, rules=[rule], webhook={"url": url, "timeout_s": 2}))
    try:
        h.add_event(count=2)
        await h.settle(until=lambda: h.alerts()[0].state == "sent")
        assert len(received) == 2 and received[0][0] == received[1][0]
        payload = received[1][1]
        assert payload["species"] == "Panthera onca" and payload["count"] == 2
        assert payload["common_name"] == {"es": "jaguar", "en": "jaguar"}
        assert payload["link"] == "http://st.lan/e/1" and payload["ack_code"] == h.alerts()[0].ack_code
        assert json.loads(h.deliveries()[0].body) == payload
    finally:
        await h.close()
        await runner.cleanup()


@pytest.mark.asyncio
async def test_a_failed_pass_loses_no_answer(
    db_url: str, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(db_url, alerts_config(twilio.base_url, rules=ANA_ONLY))
    try:
        h.add_event()
        h.sender.bind_loop()
        await h.sender.step()
        await h.sender.drain()
        assert len(twilio.messages) == 1 and h.deliveries()[0].state == "sending"
        real = h.sender._release_summaries

        def database_down(*args: object) -> int:
            raise RuntimeError("database is locked")

        monkeypatch.setattr(h.sender, "_release_summaries", database_down)
        with pytest.raises(RuntimeError):
            await h.sender.step()  # the pass rolls back, Twilio's answer is kept for the next one
        assert h.deliveries()[0].state == "sending"
        monkeypatch.setattr(h.sender, "_release_summaries", real)
        await h.sender.step()
        assert [(d.state, d.provider_sid) for d in h.deliveries()] == [("sent", twilio.messages[0]["sid"])]
        assert len(twilio.creates()) == 1
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_unknown_with_a_sid_is_fetched_by_sid(db_url: str, twilio: FakeTwilio) -> None:
    h = Harness(db_url, alerts_config(twilio.base_url, rules=ANA_ONLY))
    try:
        h.add_event(device="cam-01")
        h.add_event(device="cam-02")
        await h.settle()
        real_sid = twilio.messages[0]["sid"]
        with h.sessions.begin() as session:  # as after a crash between Twilio's answer and our commit
            first, second = session.scalars(select(Delivery).order_by(Delivery.id)).all()
            first.state, first.provider_status = "unknown", None
            second.state, second.provider_sid = "unknown", "SM" + "0" * 32  # a sid Twilio never issued
        absent = "yaguar_alert_reconciliations_total"
        await h.settle(
            until=lambda: h.deliveries()[0].state == "sent" and h.metric(absent, outcome="absent") >= 1
        )
        fetched = [r.path for r in twilio.requests if r.method == "GET" and "/Messages/" in r.path]
        assert any(real_sid in path for path in fetched)
        assert h.deliveries()[0].provider_status == "queued"
        # Twilio does not know the second: it stays unknown until reconcile_give_up_s, then is resent
        assert h.deliveries()[1].state == "unknown" and len(twilio.creates()) == 2
        with h.sessions.begin() as session:
            session.get(Delivery, 2).claimed_at = h.clock() - timedelta(hours=1)  # type: ignore[union-attr]
        await h.settle(until=lambda: h.deliveries()[1].state == "sent")
        assert len(twilio.creates()) == 3
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_a_held_write_lock_delays_and_never_loses_an_alert(db_url: str, twilio: FakeTwilio) -> None:
    config = alerts_config(twilio.base_url, rules=ANA_ONLY, sender={"poll_interval_s": 5})
    h = Harness(db_url, config, sender_busy_timeout_ms=2)
    h.add_event()
    blocker = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer (the pipeline, a long batch) holds the lock
    stop = asyncio.Event()
    runner = asyncio.ensure_future(h.sender.run(stop))
    try:
        await asyncio.sleep(0.5)
        assert twilio.creates() == []
        released = time.monotonic()
        blocker.execute("COMMIT")
        while not twilio.messages and time.monotonic() - released < 3:
            await asyncio.sleep(0.005)
        # well before the 5 s poll: the busy retry, not the poll, picked it up
        assert len(twilio.messages) == 1 and time.monotonic() - released < 3
    finally:
        stop.set()
        await runner
        blocker.close()
    assert [d.state for d in h.deliveries()] == ["sent"]
    await h.close()
