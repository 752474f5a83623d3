"""Two station workers, each with its own sender thread, on one database (SQLite file, and PostgreSQL
where its server is installed): every alert is claimed by one of them and sent exactly once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.alert_harness import BIG_CATS, Clock, Harness, alerts_config
from tests.support.fake_twilio import FakeTwilio
from tests.support.postgres import postgres_cluster

ALERTS = 30


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'station.db'}"
    else:
        pytest.importorskip("psycopg")
        with postgres_cluster() as url:
            yield url


def run_in_thread(harness: Harness, stop: threading.Event) -> threading.Thread:
    async def main() -> None:
        done = asyncio.Event()
        task = asyncio.ensure_future(harness.sender.run(done))
        while not stop.is_set():
            await asyncio.sleep(0.02)
        done.set()
        await task
        await harness.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    return thread


def test_two_workers_send_each_alert_once(database: str) -> None:
    with FakeTwilio() as twilio:
        config = alerts_config(
            twilio.base_url,
            rules=[{**BIG_CATS, "recipients": ["ana"]}],
            flood={"cooldown_s": 0, "recipient_hourly_cap": 1000},
            sender={"concurrency": 4},
        )
        workers = [Harness(database, config), Harness(database, config)]
        stop = threading.Event()
        threads = [run_in_thread(worker, stop) for worker in workers]
        try:
            for i in range(ALERTS):
                workers[i % 2].add_event(device=f"cam-{i:02d}")
            deadline = time.monotonic() + 30
            while len(twilio.messages) < ALERTS and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # anything sent twice would arrive by now
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        bodies = twilio.accepted_bodies()
        assert len(bodies) == ALERTS and len(set(bodies)) == ALERTS
        assert len(twilio.creates()) == ALERTS
        sent = [
            w.metric("yaguar_alert_send_attempts_total", channel="twilio", outcome="sent") for w in workers
        ]
        assert sum(sent) == ALERTS
        checker = Harness(database, config)
        try:
            assert {a.state for a in checker.alerts()} == {"sent"}
        finally:
            asyncio.run(checker.close())


@pytest.mark.asyncio
async def test_a_worker_killed_mid_send_is_settled_by_a_peer_once() -> None:
    """Worker A claims an SMS and dies while the request is out (Twilio has the message). Worker B, whose
    clock is 20 minutes ahead, starting then, leaves the fresh claim alone (it may be a live peer's: claims
    are aged by the database's clock, not B's); once the claim has expired, B asks Twilio instead of
    sending again: one SMS."""
    pytest.importorskip("psycopg")
    clock_a = Clock()
    clock_b = Clock(clock_a.now + timedelta(minutes=20))
    with postgres_cluster() as url, FakeTwilio() as twilio:
        config = alerts_config(
            twilio.base_url, rules=[{**BIG_CATS, "recipients": ["ana"]}], sender={"claim_expiry_s": 5}
        )
        twilio.plan("hang")  # the message is created, the answer never comes
        worker_a = Harness(url, config, clock_a)
        worker_a.add_event()
        worker_a.sender.bind_loop()
        await worker_a.sender.step()
        await asyncio.sleep(0.3)  # the request reaches the fake Twilio
        assert len(twilio.messages) == 1 and [d.state for d in worker_a.deliveries()] == ["sending"]
        worker_b = Harness(url, config, clock_b)
        try:
            assert worker_b.sender.recover() == 0, "a fresh claim may be a live peer's"
            await worker_b.settle(timeout=0.5)
            assert [d.state for d in worker_b.deliveries()] == ["sending"], "B's fast clock aged the claim"
            await asyncio.sleep(config.alerts.sender.claim_expiry_s)
            await worker_b.settle(until=lambda: worker_b.alerts()[0].state == "sent")
            delivery = worker_b.deliveries()[0]
            assert delivery.provider_sid == twilio.messages[0]["sid"], "settled from Twilio's record"
            assert len(twilio.creates()) == 1, "sent again"
            assert worker_b.metric("yaguar_alert_reconciliations_total", outcome="sent") == 1
        finally:
            await worker_a.close()  # its hung request fails: A is "dead"
            await worker_a.sender.drain(timeout=5)
            await worker_b.close()
