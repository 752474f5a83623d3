"""A whole system on one machine for the fault tests and the soak: the station as a subprocess (so it can
be SIGKILLed), simulated agents, and the end-of-run audit of every frame against the database."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.broker import Broker, free_port, wait_for_port
from tests.support.config_files import merged, storage_in, write_sections


class StationProcess:
    """``yaguar-station run`` in its own process group, against ``broker``, data under ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        broker: Broker,
        client_id: str = "station-1",
        **sections: dict[str, Any],
    ):
        """``sections``: config sections merged over the defaults, e.g. ``mqtt={"username": "station"}``."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.db = self.workdir / "station.db"
        self.media = self.workdir / "media"
        self.log = self.workdir / "station.log"
        mqtt = {"host": broker.host, "port": broker.port, "client_id": client_id}
        base = {"mqtt": mqtt, "storage": storage_in(self.workdir), "http": {"port": self.http_port}}
        self.config = write_sections(self.workdir / "station.toml", merged(base, sections))
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self, timeout: float = 60) -> StationProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "yaguar.server.cli", "--config", str(self.config), "run"],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.http_port, timeout=timeout)
        return self

    def kill(self) -> None:
        """SIGKILL, what a power cut or the OOM killer does."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.kills += 1
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def stored(self) -> int:
        return stored_count(self.db)


def stored_count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM media").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def wait_stored(station: StationProcess, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (n := station.stored()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return n


@dataclass
class Audit:
    captured: int
    stored: int
    lost: int
    duplicated: int
    corrupt: int
    unacknowledged: int

    def line(self) -> str:
        return (
            f"frames captured {self.captured}, stored {self.stored}, lost {self.lost}, "
            f"duplicated {self.duplicated}, corrupt {self.corrupt}, unacknowledged {self.unacknowledged}"
        )


def audit(station: StationProcess, captured: dict[str, dict[int, str]], agents: Iterable[object]) -> Audit:
    """Every frame each agent captured ((device, seq) -> sha256) against the database and media files."""
    with sqlite3.connect(f"file:{station.db}?mode=ro", uri=True, timeout=10) as conn:
        rows = conn.execute("SELECT device_id, seq, sha256, path FROM media").fetchall()
    keys = [(d, s) for d, s, _, _ in rows]
    duplicated = len(keys) - len(set(keys))
    in_db = {(d, s): (sha, path) for d, s, sha, path in rows}
    lost = corrupt = 0
    for device, frames in captured.items():
        for seq, sha in frames.items():
            row = in_db.get((device, seq))
            if row is None:
                lost += 1
            elif row[0] != sha or hashlib.sha256((station.media / row[1]).read_bytes()).hexdigest() != sha:
                corrupt += 1
    return Audit(
        captured=sum(len(f) for f in captured.values()),
        stored=len(set(keys)),
        lost=lost,
        duplicated=duplicated,
        corrupt=corrupt,
        unacknowledged=sum(a.pending if isinstance(a.pending, int) else len(a.pending) for a in agents),
    )


def captured_by(agents: Iterable[object]) -> dict[str, dict[int, str]]:
    return {a.device_id: dict(getattr(a, "sent", None) or getattr(a, "captured", {})) for a in agents}


class SpoolAgent:
    """The real agent's spool and publisher (``yaguar.agent``), fed bursts of real JPEGs directly (no
    camera, no PIR): what a field camera does between its trigger and the station."""

    def __init__(
        self,
        device_id: str,
        host: str,
        port: int,
        spool_dir: Path,
        jpegs: list[bytes],
        burst_size: int = 5,
        window: int = 16,
        ack_timeout_s: float = 10.0,
        max_bytes: int = 512 * 1024 * 1024,
        fsync: bool = False,
    ) -> None:
        from yaguar.agent.config import MqttConfig
        from yaguar.agent.publisher import Publisher
        from yaguar.agent.spool import Spool

        self.device_id = device_id
        self.jpegs = jpegs
        self.burst_size = burst_size
        self.spool = Spool(spool_dir, max_bytes=max_bytes, fsync=fsync)
        config = MqttConfig(
            host=host,
            port=port,
            inflight_window=window,
            ack_timeout_s=ack_timeout_s,
            reconnect_min_s=0.2,
            reconnect_max_s=2.0,
        )
        self.publisher = Publisher(self.spool, config, device_id)
        self.captured: dict[int, str] = {}
        self.peak_depth = 0
        self._bursts = 0

    def start(self) -> SpoolAgent:
        self.publisher.start()
        return self

    def capture_burst(self) -> None:
        from datetime import UTC, datetime

        event = f"{self.device_id}-e{self._bursts}"
        self._bursts += 1
        for index in range(self.burst_size):
            payload = self.jpegs[(self._bursts * self.burst_size + index) % len(self.jpegs)]
            frame = self.spool.put(
                payload,
                device=self.device_id,
                capture_id=f"{event}-{index}",
                event_id=event,
                burst_index=index,
                burst_size=self.burst_size,
                captured_at=datetime.now(UTC),
                trigger="pir",
            )
            if frame is not None:
                self.captured[frame.seq] = frame.meta.sha256
        self.peak_depth = max(self.peak_depth, self.spool.depth)

    @property
    def pending(self) -> int:
        return self.spool.depth

    def close(self) -> None:
        self.publisher.stop(timeout=2)


def wait_drained(agents: Iterable[SpoolAgent], timeout: float) -> bool:
    agents = list(agents)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(agent.pending == 0 for agent in agents):
            return True
        time.sleep(0.1)
    return False
