"""kill -9 of the broker and, separately, of the station in the middle of 10,000 frames from 20 agents:
every frame captured is stored exactly once, with its bytes intact.

The agents are the real agent's spool and publisher (``yaguar.agent``): each frame stays in the spool
until the station's application Ack and goes again after a reconnect or an ack timeout (10 s here, 60 s
in the field); the broker keeps the station's persistent session; the station is idempotent on
(device, seq). The spool runs without fsync here: these tests kill the broker and the station, never
the agents' machine.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.support.broker import Broker
from tests.support.field import SpoolAgent, StationProcess, audit, captured_by, wait_drained, wait_stored
from tests.support.small_jpegs import small_real_jpegs

AGENTS = 20
FRAMES_PER_AGENT = 500  # 10,000 in all
BURST = 5
KILL_AT = 0.4  # fraction of the frames stored when the kill comes


def start_field(broker: Broker, images: Path, spools: Path) -> list[SpoolAgent]:
    jpegs = small_real_jpegs(images, count=40, width=160)
    return [
        SpoolAgent(
            f"cam-{i:02d}", broker.host, broker.port, spools / f"cam-{i:02d}", jpegs[i:] + jpegs[:i], BURST
        ).start()
        for i in range(AGENTS)
    ]


def capture_all(agents: list[SpoolAgent], pause: float = 0.02) -> threading.Thread:
    def run() -> None:
        for _ in range(FRAMES_PER_AGENT // BURST):
            for agent in agents:
                agent.capture_burst()
            time.sleep(pause)

    thread = threading.Thread(target=run, name="field", daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["broker", "station"])
def test_kill_9_mid_stream_loses_and_duplicates_nothing(tmp_path: Path, images: Path, victim: str) -> None:
    total = AGENTS * FRAMES_PER_AGENT
    started = time.monotonic()
    with Broker(tmp_path / "broker") as broker:
        station = StationProcess(tmp_path / "station", broker).start()
        agents = start_field(broker, images, tmp_path / "spools")
        try:
            field = capture_all(agents)
            at_kill = wait_stored(station, int(KILL_AT * total), timeout=60)
            killed = broker if victim == "broker" else station
            killed.kill()
            time.sleep(0.5)
            killed.start()
            field.join(60)
            drained = wait_drained(agents, timeout=60)
            result = audit(station, captured_by(agents), agents)
        finally:
            for agent in agents:
                agent.close()
            station.stop()
    elapsed = time.monotonic() - started
    print(f"\n{victim} kill -9 at {at_kill}/{total} stored; {result.line()}; {elapsed:.1f} s")
    assert 0 < at_kill < total, "the kill must come while frames are flowing"
    assert result.captured == total
    assert (result.lost, result.duplicated, result.corrupt, result.unacknowledged) == (0, 0, 0, 0), (
        result.line()
    )
    assert result.stored == total and drained
