"""A 6-hour station outage, simulated: the real agent spool with its default policy (512 MiB cap,
drop_oldest) takes six hours of captures on a simulated clock, at a quiet and a busy trigger rate.

Sizes are scaled so the run takes seconds: each small real JPEG stands for a 500 kB field frame
(max_send_px 1920) and the byte cap shrinks by the same factor, which leaves the policy's decisions
unchanged (they depend only on ratios of bytes). At the quiet rate the backlog fits and is delivered
once the station is back, newest trigger first; at the busy rate the spool evicts the oldest frames,
counts each one, and keeps the newest hours, as the policy documents.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.broker import Broker
from tests.support.field import StationProcess, audit
from tests.support.small_jpegs import small_real_jpegs
from yaguar.agent.config import MqttConfig, SpoolConfig
from yaguar.agent.publisher import Publisher
from yaguar.agent.spool import Spool

FIELD_FRAME_BYTES = 500_000  # a 1920-px JPEG at quality 85
OUTAGE = timedelta(hours=6)
BURST = 3


def simulate_outage(spool: Spool, jpegs: list[bytes], triggers_per_hour: int) -> dict[int, str]:
    start = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    step = timedelta(hours=1) / triggers_per_hour
    captured: dict[int, str] = {}
    t, n = start, 0
    while t < start + OUTAGE:
        for index in range(BURST):
            frame = spool.put(
                jpegs[(n + index) % len(jpegs)],
                device="cam-out",
                capture_id=f"e{n}-{index}",
                event_id=f"e{n}",
                burst_index=index,
                burst_size=BURST,
                captured_at=t + timedelta(seconds=index * 0.5),
                trigger="pir",
            )
            if frame is not None:
                captured[frame.seq] = frame.meta.sha256
        t += step
        n += 1
    return captured


def wait_until_empty(spool: Spool, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while spool.depth and time.monotonic() < deadline:
        time.sleep(0.1)
    return spool.depth == 0


@pytest.fixture(scope="module")
def scaled(images: Path) -> tuple[list[bytes], int, float]:
    jpegs = small_real_jpegs(images, count=24, width=160)
    mean = sum(map(len, jpegs)) / len(jpegs)
    scale = FIELD_FRAME_BYTES / mean
    return jpegs, int(SpoolConfig().max_bytes / scale), scale


@pytest.mark.slow
def test_quiet_six_hour_outage_fits_and_is_delivered_newest_trigger_first(scaled, tmp_path: Path) -> None:
    jpegs, cap, scale = scaled
    default = SpoolConfig()
    spool = Spool(tmp_path / "spool", max_bytes=cap, policy=default.policy, fsync=False)
    captured = simulate_outage(spool, jpegs, triggers_per_hour=20)  # 60 frames an hour
    evicted = spool.metrics.total("yaguar_agent_frames_evicted")
    field_mb = spool.bytes * scale / 1e6
    print(
        f"\n6 h outage, 20 triggers/h: {len(captured)} frames, ~{field_mb:.0f} MB at field size of the "
        f"{default.max_bytes / 2**20:.0f} MiB spool; evicted {evicted}: FITS"
    )
    assert evicted == 0 and spool.depth == len(captured) == 6 * 20 * BURST
    newest_trigger = max(captured) - (BURST - 1)
    assert spool.send_order()[0].seq == newest_trigger, "after an outage the newest animal goes first"
    with Broker(tmp_path / "broker") as broker:
        station = StationProcess(tmp_path / "station", broker).start()
        publisher = Publisher(
            spool, MqttConfig(host=broker.host, port=broker.port, inflight_window=8), "cam-out"
        )
        publisher.start()
        try:
            drained = wait_until_empty(spool, timeout=60)
        finally:
            publisher.stop(timeout=2)
            station.stop()
    result = audit(station, {"cam-out": captured}, [])
    with sqlite3.connect(station.db) as conn:
        first = conn.execute("SELECT seq FROM media ORDER BY id LIMIT 1").fetchone()[0]
    assert drained and (result.lost, result.duplicated, result.corrupt) == (0, 0, 0), result.line()
    assert first == newest_trigger


@pytest.mark.slow
def test_busy_six_hour_outage_evicts_oldest_by_policy_and_says_so(scaled, tmp_path: Path) -> None:
    jpegs, cap, _scale = scaled
    default = SpoolConfig()
    spool = Spool(tmp_path / "spool", max_bytes=cap, policy=default.policy, fsync=False)
    captured = simulate_outage(spool, jpegs, triggers_per_hour=360)  # one burst every 10 s (PIR hold-off)
    evicted = spool.metrics.total("yaguar_agent_frames_evicted")
    kept = spool.send_order()
    oldest_kept = min(kept, key=lambda f: f.seq).meta.captured_at
    hours_kept = (datetime(2026, 11, 26, 6, 0, tzinfo=UTC) - oldest_kept).total_seconds() / 3600
    print(
        f"\n6 h outage, 360 triggers/h: {len(captured)} frames ({len(captured) * FIELD_FRAME_BYTES / 1e9:.1f} GB "
        f"at field size) > {default.max_bytes / 2**20:.0f} MiB spool: EVICTS oldest {evicted}, keeps "
        f"{len(kept)} frames = the last {hours_kept:.2f} h"
    )
    assert default.policy == "drop_oldest"
    assert evicted > 0 and evicted + len(kept) == len(captured)
    assert spool.bytes <= cap
    # drop_oldest: what is kept is exactly the newest frames, contiguous up to the last capture
    kept_seqs = sorted(f.seq for f in kept)
    assert kept_seqs == sorted(captured)[-len(kept_seqs) :]
    # the cap holds about cap / frame size frames: about an hour of a busy camera at field size
    assert abs(len(kept) - cap / (sum(map(len, jpegs)) / len(jpegs))) < 0.1 * len(kept)
