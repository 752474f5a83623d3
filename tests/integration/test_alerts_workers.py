"""Two station workers, each with its own sender thread, on one database (SQLite file, and PostgreSQL
where its server is installed): every alert is claimed by one of them and sent exactly once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.alert_harness import BIG_CATS, Harness, alerts_config
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
