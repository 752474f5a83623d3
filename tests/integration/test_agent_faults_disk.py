"""Fault: the spool fills up, by its byte cap or because the disk itself is full (a real tiny tmpfs
when the test may mount one). The policy applies, the agent keeps running, the eviction counter rises."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.agent_support import agent_config, wait_until
from tests.support.tmpfs import tiny_tmpfs
from yaguar.agent.service import Agent


def run_bursts(agent: Agent, bursts: int, size: int = 3) -> None:
    """One burst after the other; each frame is either spooled or counted as refused."""
    for done in range(1, bursts + 1):
        assert agent.trigger("pir")

        def handled(expected: int = done * size) -> bool:
            registry = agent.metrics.registry
            refused = registry.get_sample_value("yaguar_agent_frames_evicted_total", {"policy": "refuse_new"})
            return agent.metrics.total("yaguar_agent_frames_captured") + (refused or 0) >= expected

        assert wait_until(handled, 5)


@pytest.mark.parametrize("policy", ["drop_oldest", "refuse_new"])
def test_byte_cap(tmp_path: Path, images: Path, policy: str) -> None:
    # No broker at all: every frame stays in the spool until the cap is reached.
    config = agent_config(
        tmp_path,
        None,
        images / "classic",
        spool={"max_bytes": 600_000, "policy": policy},
        capture={"burst_size": 3, "burst_interval_s": 0.01},
    )
    agent = Agent(config).start()
    try:
        run_bursts(agent, 5)
        assert wait_until(lambda: agent.metrics.total("yaguar_agent_frames_evicted") > 0, 5)
        assert agent.spool.bytes <= 600_000
        assert agent.healthy()
        beat = agent.health.heartbeat()
        assert beat.frames_evicted == agent.metrics.total("yaguar_agent_frames_evicted") > 0
        seqs = [f.seq for f in agent.spool.send_order()]
        captured = agent.metrics.total("yaguar_agent_frames_captured")
        if policy == "drop_oldest":
            assert max(seqs) == captured - 1  # the newest frame is kept
        else:
            assert min(seqs) == 0  # the oldest frames are kept
    finally:
        agent.stop()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    with tiny_tmpfs(tmp_path / "tiny", "1200k") as mount:
        yield mount


@pytest.mark.parametrize("policy", ["drop_oldest", "refuse_new"])
def test_the_disk_itself_fills_up(tiny_disk: Path, tmp_path: Path, images: Path, policy: str) -> None:
    config = agent_config(
        tmp_path,
        None,
        images / "classic",
        spool={
            "dir": str(tiny_disk / "spool"),
            "max_bytes": 2**30,
            "policy": policy,
        },  # cap far above the disk
        capture={"burst_size": 3, "burst_interval_s": 0.01},
    )
    agent = Agent(config).start()
    try:
        run_bursts(agent, 5)
        assert wait_until(lambda: agent.metrics.total("yaguar_agent_frames_evicted") > 0, 5)
        assert agent.healthy()
        assert agent.spool.depth > 0
        assert not list((tiny_disk / "spool" / "pending").glob(".tmp-*"))  # no partial file left behind
        assert agent.health.heartbeat().frames_evicted > 0
    finally:
        agent.stop()
