"""Pipeline workers (`yaguar-station worker`, real processes) sharing one PostgreSQL: one of three killed
with SIGKILL in the middle of 5,000 frames, and workers whose clocks are 10 minutes off. Every frame is
stored once, each burst becomes one event (none split, none doubled), and no lease is left behind.

The pipeline is kept light so 5,000 frames fit the suite's budget: 240x180 frames, no species
classifiers, motion at 160 pixels wide, and still bursts that the motion filter skips (the detector runs
on each camera's first frame at a worker, a few hundred frames). The clock test has moving bursts too."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.workers import (
    FAKETIME_LIB,
    Workload,
    events_by_burst,
    progress,
    start_worker,
    store_bursts,
    worker_config,
)
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.models import Detection, Media


def wait_for(url: str, what: str, condition: Callable[[dict[str, int]], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition(progress(url)):
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {progress(url)}")


def analysed(states: dict[str, int]) -> int:
    return states.get("done", 0) + states.get("skipped", 0)


def log_clock_offset(log: Path, started: datetime) -> float:
    """The time a worker wrote on its first log line, in seconds after the real time it was started."""
    first = log.read_text().splitlines()[0]
    stamped = datetime.strptime(first[:23], "%Y-%m-%d %H:%M:%S,%f").astimezone(UTC)  # local time
    return (stamped - started).total_seconds()


def check_once_and_grouped(url: str, load: Workload) -> None:
    states = progress(url)
    assert states.get("pending", 0) == 0 and states.get("failed", 0) == 0, states
    assert states.get("done", 0) + states.get("skipped", 0) == load.total, states
    groups, events = events_by_burst(url)
    assert len(groups) == load.cameras * load.bursts
    split = {burst: ids for burst, ids in groups.items() if len(ids) != 1 or None in ids}
    assert not split, f"bursts split over several events: {list(split.items())[:5]}"
    assert len(events) == len(groups), "an event without its own burst (doubled)"
    assert all(e.frame_count == load.frames for e in events), [e.frame_count for e in events][:20]
    engine = make_db_engine(url)
    with make_session_factory(engine)() as session:
        repeated = session.execute(
            select(Detection.media_id, func.count())
            .group_by(Detection.media_id, Detection.category, Detection.x, Detection.y)
            .having(func.count() > 1)
        ).all()
        leased = session.scalar(select(func.count()).where(Media.lease_owner.is_not(None)))
        detected = session.scalar(select(func.count(func.distinct(Detection.media_id))))
    engine.dispose()
    assert not repeated, f"frames stored twice: {repeated[:5]}"
    assert leased == 0
    assert detected and detected > 0, "the detector never ran: the workload tests nothing"


@contextmanager
def workers_running(
    url: str,
    workdir: Path,
    images: Path,
    models_dir: Path,
    load: Workload,
    lease_s: float,
    clocks: list[str | None],
) -> Iterator[tuple[list[subprocess.Popen[bytes]], list[Path]]]:
    """Store the workload's frames, start one worker per entry of ``clocks`` (its clock offset), and stop
    whichever are still running at the end."""
    media = workdir / "media"
    store_bursts(url, media, images, load)
    config = worker_config(workdir / "worker.toml", url, media, models_dir, lease_s)
    logs = [workdir / f"worker-{i}.log" for i in range(len(clocks))]
    workers = [start_worker(config, log, clock) for log, clock in zip(logs, clocks, strict=True)]
    try:
        yield workers, logs
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in workers:
            worker.wait(30)


def leases_by_worker(url: str) -> dict[str, int]:
    engine = make_db_engine(url)
    with make_session_factory(engine)() as session:
        owners = session.execute(
            select(Media.lease_owner, func.count())
            .where(Media.lease_owner.is_not(None))
            .group_by(Media.lease_owner)
        ).all()
    engine.dispose()
    return {str(owner): int(n) for owner, n in owners}


def test_one_of_three_workers_killed_mid_run(
    pg_url: str, tmp_path: Path, images: Path, models_dir: Path
) -> None:
    load = Workload(cameras=50, bursts=20, frames=5, moving_every=100)  # still: see the module's doc
    with workers_running(pg_url, tmp_path, images, models_dir, load, 5, [None, None, None]) as (workers, _):
        wait_for(pg_url, "a third analysed", lambda s: analysed(s) >= load.total // 3, timeout=240)
        victim = workers[0]
        owners = leases_by_worker(pg_url)
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(10) == -signal.SIGKILL
        assert sum(n for owner, n in owners.items() if f"-{victim.pid}-" in owner) > 0, owners
        wait_for(pg_url, "all analysed", lambda s: s.get("pending", 0) == 0, timeout=300)
    # (The survivors may themselves lose a lease now and then when the machine is loaded; that costs
    # work, not correctness, which is what this checks.)
    check_once_and_grouped(pg_url, load)


@pytest.mark.skipif(not FAKETIME_LIB.exists(), reason="libfaketime is not installed (dev.sh installs it)")
def test_workers_with_clocks_ten_minutes_off(
    pg_url: str, tmp_path: Path, images: Path, models_dir: Path
) -> None:
    load = Workload(cameras=12, bursts=8, frames=5, moving_every=8)
    clocks = ["-10m", "+10m"]
    started = datetime.now(UTC)
    with workers_running(pg_url, tmp_path, images, models_dir, load, 30, list(clocks)) as (workers, logs):
        wait_for(pg_url, "all analysed", lambda s: s.get("pending", 0) == 0, timeout=180)
        for worker in workers:
            worker.terminate()
            assert worker.wait(30) == 0
    check_once_and_grouped(pg_url, load)
    for offset, log in zip(clocks, logs, strict=True):
        text = log.read_text()
        # The clock really was off in the worker (its log lines carry its own time)...
        expected = 600 if offset.startswith("+") else -600
        assert 0 <= log_clock_offset(log, started) - expected < 60, text[:300]
        # ...and yet it neither lost its leases (by its clock they would run out 10 minutes early) nor
        # had them taken, and no event was closed early (checked above: no burst split).
        assert "taken over" not in text, f"worker {offset} lost leases:\n{text[-2000:]}"
