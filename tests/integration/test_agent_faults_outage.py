"""Fault: the broker is down for a long time. Frames spool; when it is back they all arrive once, the
newest event's first frame ahead of the backlog, then the rest oldest first."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.integration.agent_support import StationDouble, agent_config, wait_until
from tests.support.broker import Broker
from yaguar.agent.service import Agent


def test_broker_down_for_a_long_time(tmp_path: Path, images: Path) -> None:
    # Persistence must work for the station's session to survive the restart; started as root, Mosquitto
    # would drop to its own user, who cannot write into pytest's 0700 temp dir.
    broker = Broker(tmp_path / "broker", extra="user root" if os.geteuid() == 0 else "").start()
    station = StationDouble(broker).start()
    config = agent_config(
        tmp_path,
        broker,
        images / "classic",
        capture={"burst_size": 3, "burst_interval_s": 0.02},
        mqtt={"reconnect_min_s": 0.1, "reconnect_max_s": 1.0, "inflight_window": 4},
    )
    agent = Agent(config).start()
    try:
        assert agent.publisher.connected.wait(10)
        agent.trigger("test")
        assert wait_until(lambda: len(station.stored) == 3 and agent.spool.depth == 0, 10)
        before = set(station.stored)

        broker.stop()
        assert wait_until(lambda: not agent.publisher.connected.is_set(), 5)
        bursts = 4
        for _ in range(bursts):  # animals keep coming while the radio link is gone
            agent.trigger("pir")
            time.sleep(0.6)
        assert wait_until(lambda: agent.spool.depth == 3 * bursts, 5)
        spooled = agent.spool.send_order()
        newest_head = spooled[0]
        assert newest_head.meta.burst_index == 0 and newest_head.seq == max(f.seq for f in spooled) - 2
        time.sleep(1.5)  # reconnect attempts back off meanwhile, and fail
        assert agent.metrics.total("yaguar_agent_frames_sent") == 3

        assert (tmp_path / "broker" / "mosquitto.db").exists()
        broker.start()  # same port, same persistence: the station's session is still there
        assert wait_until(lambda: agent.spool.depth == 0, 30), f"{agent.spool.depth} frames still spooled"
        assert wait_until(lambda: len(station.stored) == 3 + 3 * bursts, 5)
        arrived = [seq for seq in station.first_arrivals() if seq not in before]
        backlog = sorted(f.seq for f in spooled if f.seq != newest_head.seq)
        assert arrived == [newest_head.seq, *backlog]
        assert station.conflicts == []
        assert wait_until(lambda: agent.metrics.total("yaguar_agent_frames_sent") == 3 + 3 * bursts, 5)
        assert agent.metrics.total("yaguar_agent_mqtt_connects") >= 2
        assert agent.healthy()
    finally:
        agent.stop()
        station.stop()
        broker.stop()
