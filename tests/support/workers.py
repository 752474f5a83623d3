"""Several pipeline workers (`yaguar-station worker`, real processes) on one database: bursts of real
frames stored as ingest stores them, the workers' config, and what the database says afterwards."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import func, insert, select, update

from tests.support.config_files import Sections, merged, write_sections
from tests.support.engine import encode, moving_burst
from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.models import Device, Event, Media

T0 = datetime(2026, 3, 14, 6, 0, tzinfo=UTC)
BURST_SPACING = timedelta(minutes=5)  # far more than the event gap: each burst is its own event
FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


@dataclass(frozen=True)
class Workload:
    cameras: int
    bursts: int  # per camera
    frames: int  # per burst
    moving_every: int  # every n-th burst has an animal walking through (the detector runs); others are still
    # (more than ``bursts``: all still; the detector then runs on each camera's first frame at a worker)

    @property
    def total(self) -> int:
        return self.cameras * self.bursts * self.frames


def _burst_files(images: Path, media_root: Path, load: Workload) -> tuple[list[str], list[list[str]]]:
    """One still frame per camera (a real photo, small) and a few bursts with an animal moving."""
    sources = sorted(p for p in (images / "camera-trap").iterdir() if "error" not in p.name)
    rng = np.random.default_rng(7)
    still, moving = [], []
    for cam in range(load.cameras):
        image = cv2.imread(str(sources[cam % len(sources)]), cv2.IMREAD_REDUCED_COLOR_4)
        image = cv2.resize(image, (240, 180), interpolation=cv2.INTER_AREA)
        rel = f"still/cam-{cam:03d}.jpg"
        (media_root / rel).parent.mkdir(parents=True, exist_ok=True)
        (media_root / rel).write_bytes(encode(image))
        still.append(rel)
    animal = cv2.resize(cv2.imread(str(sorted((images / "jaguar").glob("*.jpg"))[0])), (72, 48))
    background = cv2.imread(str(media_root / still[0]))
    for k in range(3):
        rels = []
        for i, frame in enumerate(moving_burst(background, animal, load.frames, rng)):
            rel = f"moving/{k}-{i}.jpg"
            (media_root / rel).parent.mkdir(parents=True, exist_ok=True)
            (media_root / rel).write_bytes(encode(frame))
            rels.append(rel)
        moving.append(rels)
    return still, moving


def store_bursts(
    url: str, media_root: Path, images: Path, load: Workload, state: str = "pending", start: datetime = T0
) -> None:
    """Pending frames as ingest leaves them: bursts on each camera, oldest first, the first at ``start``.
    Another ``state`` holds them back from the workers until ``release_held`` (a benchmark's start)."""
    engine = make_db_engine(url)
    upgrade(engine)
    still, moving = _burst_files(images, media_root, load)
    rows = []
    for burst in range(load.bursts):
        for cam in range(load.cameras):
            device = f"cam-{cam:03d}"
            is_moving = burst % load.moving_every == load.moving_every - 1
            for i in range(load.frames):
                rel = moving[(cam + burst) % len(moving)][i] if is_moving else still[cam]
                seq = burst * load.frames + i
                rows.append(
                    {
                        "device_id": device,
                        "seq": seq,
                        "capture_id": f"{device}-{seq}",
                        "agent_event_id": f"{device}-b{burst}",
                        "burst_index": i,
                        "burst_size": load.frames,
                        "trigger": "pir",
                        "captured_at": start + burst * BURST_SPACING + timedelta(seconds=i),
                        "utc_offset_min": -300,
                        "sha256": hashlib.sha256(rel.encode()).hexdigest(),
                        "size": 1,
                        "width": 240,
                        "height": 180,
                        "path": rel,
                        "process_state": state,
                    }
                )
    with make_session_factory(engine).begin() as session:
        session.execute(insert(Device), [{"id": f"cam-{c:03d}"} for c in range(load.cameras)])
        for first in range(0, len(rows), 1000):
            session.execute(insert(Media), rows[first : first + 1000])
    engine.dispose()


def worker_config(
    path: Path,
    url: str,
    media_root: Path,
    models_dir: Path,
    lease_s: float,
    batch_size: int = 16,
    gap_s: float = 60,
    more: Sections | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """A station config for pipeline workers; the pipeline is kept light so thousands of frames stay
    affordable: small frames, no species classifiers, and motion skips the still frames. ``more``: further
    sections merged over these, e.g. alerts; ``env``: the secrets the workers are given."""
    pipeline = {
        "enabled": True,
        "model_dir": models_dir,
        "classifiers": [],
        "batch_size": batch_size,
        "queue_size": 2 * batch_size,
        "decode_workers": 1,
        "threads": 1,
        "poll_interval_s": 0.2,
        "lease_s": lease_s,
        "event_gap_s": gap_s,
        "motion": {"width": 160},
    }
    base = {"storage": {"database_url": url, "media_root": media_root}, "pipeline": pipeline}
    return write_sections(path, merged(base, more or {}), env)


def start_worker(
    config: Path, log: Path, clock_offset: str | None = None, env_more: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``yaguar-station worker`` in its own process; ``clock_offset`` (e.g. "-10m") runs it under
    libfaketime, so its clock really is off; ``env_more``: further environment (a secret)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_more or {})}
    if clock_offset is not None:
        env.update(LD_PRELOAD=str(FAKETIME_LIB), FAKETIME=clock_offset, FAKETIME_DONT_FAKE_MONOTONIC="1")
    return subprocess.Popen(
        [sys.executable, "-m", "yaguar.server.cli", "--config", str(config), "worker"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def release_held(url: str, state: str) -> None:
    """Make every frame stored with ``state`` pending at once."""
    engine = make_db_engine(url)
    with make_session_factory(engine).begin() as session:
        session.execute(update(Media).where(Media.process_state == state).values(process_state="pending"))
    engine.dispose()


def progress(url: str) -> dict[str, int]:
    """Frames by pipeline state."""
    engine = make_db_engine(url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(select(Media.process_state, func.count()).group_by(Media.process_state))
            return {state: int(n) for state, n in rows}
    finally:
        engine.dispose()


def events_by_burst(url: str) -> tuple[dict[str, set[int]], list[Event]]:
    """For each burst, the events its frames were grouped into; and every event."""
    engine = make_db_engine(url)
    try:
        with make_session_factory(engine)() as session:
            groups: dict[str, set[int]] = {}
            for burst, event_id in session.execute(select(Media.agent_event_id, Media.event_id)):
                groups.setdefault(burst, set()).add(event_id)
            return groups, list(session.scalars(select(Event)))
    finally:
        engine.dispose()
