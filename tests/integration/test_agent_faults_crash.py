"""Fault: the agent process is killed with SIGKILL at random moments while it captures and publishes,
several times over. Afterwards every frame that ever reached the spool is at the station or still
spooled, whole and decodable; no partial file is left; no seq was handed out twice; and the broker
told the station the agent was offline (its Last Will)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from tests.integration.agent_support import StationDouble, wait_until
from tests.support.broker import Broker
from tests.support.config_files import write_agent_config
from yaguar.agent.spool import read_frame_file

KILLS = 5


def write_config(path: Path, broker: Broker, spool: Path, images: Path) -> None:
    mqtt = {
        "host": broker.host,
        "port": broker.port,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.3,
        "ack_timeout_s": 3,
    }
    write_agent_config(
        path,
        {
            "device_id": "cam-01",
            "pin_factory": "mock",
            "log_level": "WARNING",
            "mqtt": mqtt,
            "camera": {"type": "replay", "folder": images},
            "capture": {"burst_size": 3, "burst_interval_s": 0.02},
            "pir": {"enabled": False},
            "timelapse": {"interval_s": 0.1},
            "spool": {"dir": spool, "seq_block": 4},
            "health": {"heartbeat_interval_s": 60},
        },
    )


class SpoolWatcher(threading.Thread):
    """Notes every seq that appears in the spool's pending folder: these frames were captured."""

    def __init__(self, pending: Path) -> None:
        super().__init__(daemon=True)
        self.pending = pending
        self.seen: set[int] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.01):
            try:
                names = os.listdir(self.pending)
            except FileNotFoundError:
                continue
            self.seen.update(int(n.split(".")[0]) for n in names if n.endswith(".frame"))


def test_sigkill_during_capture_and_publish(broker: Broker, tmp_path: Path, images: Path) -> None:
    spool = tmp_path / "spool"
    config = tmp_path / "agent.toml"
    write_config(config, broker, spool, images / "classic")
    command = [sys.executable, "-m", "yaguar.agent.cli", "--config", str(config), "run"]
    rng = random.Random(4)
    watcher = SpoolWatcher(spool / "pending")
    watcher.start()
    with StationDouble(broker) as station:
        for _ in range(KILLS):
            onlines = sum(s.state == "online" for s in station.statuses)
            proc = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.DEVNULL)
            try:
                assert wait_until(
                    lambda n=onlines: sum(s.state == "online" for s in station.statuses) > n, 20
                )
                time.sleep(rng.uniform(0.2, 1.5))  # somewhere in a burst, an fsync, a publish or an ack
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            assert wait_until(lambda: station.statuses[-1].state == "offline", 5), (
                "no Last Will after SIGKILL"
            )

        # One last, clean run drains whatever the kills left behind.
        onlines = sum(s.state == "online" for s in station.statuses)
        proc = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE)
        try:
            assert wait_until(lambda: sum(s.state == "online" for s in station.statuses) > onlines, 20)
            captured_before_drain = set(watcher.seen)
            assert wait_until(lambda: captured_before_drain <= set(station.stored), 30), (
                f"missing at the station: {sorted(captured_before_drain - set(station.stored))[:10]}"
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 0, stderr.decode()[-2000:]
    watcher.stop.set()
    watcher.join()

    assert station.conflicts == []  # a seq never came back with other bytes
    capture_ids = [meta.capture_id for meta, _ in station.stored.values()]
    assert len(set(capture_ids)) == len(capture_ids)  # ...nor did two seqs carry the same capture
    assert len(station.stored) >= KILLS  # the kills did not stop the work
    for meta, payload in station.stored.values():
        pixels = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
        assert pixels is not None and pixels.shape[:2] == (meta.height, meta.width)
    leftovers = list((spool / "pending").iterdir())
    assert not [p for p in leftovers if p.name.startswith(".tmp-")]
    for path in leftovers:  # frames captured during the last run and not yet acked: whole
        meta, payload = read_frame_file(path)
        assert meta.seq not in station.stored or station.stored[meta.seq][0].sha256 == meta.sha256
    assert not list((spool / "quarantine").glob("*.frame"))
