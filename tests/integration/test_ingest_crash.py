"""kill -9 of the station in the middle of 2,000 frames from 10 agents, then a restart: every frame is
stored exactly once, with its bytes intact."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.support.field import StationProcess
from tests.support.small_jpegs import small_real_jpegs
from yaguar.server.simulator import SimAgent

AGENTS = 10
FRAMES_PER_AGENT = 200


@pytest.mark.slow
def test_kill_9_mid_stream_then_restart_stores_every_frame_once(broker, tmp_path, images: Path) -> None:
    jpegs = small_real_jpegs(images)
    workdir = tmp_path / "station"
    mqtt = {"shared_group": os.environ.get("SG", "yaguar")}
    station = StationProcess(workdir, broker, client_id="station-crash-test", mqtt=mqtt).start(timeout=30)
    agents = [
        SimAgent(f"cam-{i:02d}", broker.host, broker.port, jpegs[i:] + jpegs[:i], burst_size=5).connect()
        for i in range(AGENTS)
    ]
    stored_at_kill: list[int] = []
    total = AGENTS * FRAMES_PER_AGENT

    def publish_all() -> None:
        for _ in range(FRAMES_PER_AGENT // 5):
            for agent in agents:
                agent.publish_burst()
            time.sleep(0.05)

    publisher = threading.Thread(target=publish_all)
    publisher.start()
    try:
        # kill the station twice while frames are flowing: once past 20% and once past 55% stored
        for fraction in (0.20, 0.55):
            deadline = time.monotonic() + 120
            while station.stored() < fraction * total and time.monotonic() < deadline:
                time.sleep(0.05)
            station.kill()
            stored_at_kill.append(station.stored())
            time.sleep(0.3)
            station.start(timeout=30)
        publisher.join()
        for agent in agents:
            if not agent.wait_acked(60):
                with sqlite3.connect(workdir / "station.db") as conn:
                    in_db = conn.execute(
                        "SELECT seq FROM media WHERE device_id = ?", (agent.device_id,)
                    ).fetchall()
                stored = {row[0] for row in in_db}
                missing = sorted(agent.pending)
                pytest.fail(
                    f"{agent.device_id}: never acknowledged {missing[:10]}; "
                    f"of those in the database: {sorted(set(missing) & stored)[:10]}"
                )
    finally:
        for agent in agents:
            agent.close()
        station.stop()
    # both kills hit while frames were still flowing
    assert len(stored_at_kill) == 2
    assert all(0 < n < total for n in stored_at_kill), stored_at_kill

    with sqlite3.connect(workdir / "station.db") as conn:
        rows = conn.execute("SELECT device_id, seq, sha256, path FROM media").fetchall()
    assert len(rows) == AGENTS * FRAMES_PER_AGENT
    assert len({(d, s) for d, s, _, _ in rows}) == len(rows)
    expected = {(a.device_id, seq) for a in agents for seq in range(FRAMES_PER_AGENT)}
    assert {(d, s) for d, s, _, _ in rows} == expected
    for _, _, sha, path in rows:
        assert hashlib.sha256((workdir / "media" / path).read_bytes()).hexdigest() == sha
    assert not list((workdir / "media").glob("*/.*.tmp")), "partial files left behind"
