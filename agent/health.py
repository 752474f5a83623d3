"""Health: the heartbeat's readings, and the station's pushed config applied (or refused) without a restart.

Every reading is "where readable": a missing sensor or file gives None and the field is left out of the
heartbeat, never a made-up value.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from yaguar.config import ConfigError
from yaguar.protocol import topics
from yaguar.protocol.errors import ProtocolError
from yaguar.protocol.messages import Heartbeat, RemoteConfig
from yaguar.protocol.topics import Kind
from yaguar.protocol.validate import parse_json_message

from .cameras.base import local_now
from .config import AgentConfig, apply_remote
from .metrics import AgentMetrics

log = logging.getLogger(__name__)
_TIME_ERROR = 5  # adjtimex: the clock is not synchronised


def read_cpu_temp(path: Path) -> float | None:
    try:
        value = float(path.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return None
    return value if -60 <= value <= 150 else None


def read_wifi_dbm(path: Path) -> float | None:
    """Signal level of the first wireless interface in /proc/net/wireless, in dBm."""
    try:
        lines = path.read_text().splitlines()[2:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 4:
            try:
                level = float(fields[3].rstrip("."))
            except ValueError:
                continue
            return level if -150 <= level <= 0 else None
    return None


def read_battery(path: Path | None, scale: float) -> float | None:
    if path is None:
        return None
    try:
        value = float(path.read_text().strip()) * scale
    except (OSError, ValueError):
        return None
    return value if 0 <= value <= 100 else None


def clock_synced() -> bool | None:
    """Whether the kernel says the clock is NTP-synchronised (adjtimex), else what timedatectl says."""
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        try:
            libc = ctypes.CDLL(libc_name, use_errno=True)
            timex = ctypes.create_string_buffer(512)  # struct timex with modes = 0: read only
            state = libc.adjtimex(timex)
            if state >= 0:
                return state != _TIME_ERROR
        except (OSError, AttributeError):
            pass
    timedatectl = shutil.which("timedatectl")
    if timedatectl:
        try:
            out = subprocess.run(
                [timedatectl, "show", "-p", "NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                timeout=2,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.stdout.strip() in ("yes", "no"):
            return out.stdout.strip() == "yes"
    return None


def disk_free(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def load1() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


class HealthReporter:
    """Builds the heartbeat from the system's readings and the agent's counters."""

    def __init__(
        self,
        device_id: str,
        config: Callable[[], AgentConfig],
        metrics: AgentMetrics,
        spool_state: Callable[[], tuple[int, int]],
        camera_error: Callable[[], str | None],
        agent_version: str,
        config_version: Callable[[], int],
    ) -> None:
        self.device_id = device_id
        self.config = config
        self.metrics = metrics
        self.spool_state = spool_state
        self.camera_error = camera_error
        self.agent_version = agent_version
        self.config_version = config_version
        self.started = time.monotonic()

    def heartbeat(self) -> Heartbeat:
        cfg = self.config()
        depth, size = self.spool_state()
        error = self.camera_error()
        return Heartbeat(
            device=self.device_id,
            sent_at=local_now(),
            uptime_s=round(time.monotonic() - self.started, 1),
            agent_version=self.agent_version,
            config_version=self.config_version(),
            cpu_temp_c=read_cpu_temp(cfg.health.thermal_file),
            load1=load1(),
            disk_free_bytes=disk_free(cfg.spool.dir),
            spool_depth=depth,
            spool_bytes=size,
            frames_captured=self.metrics.total("yaguar_agent_frames_captured"),
            frames_sent=self.metrics.total("yaguar_agent_frames_sent"),
            frames_evicted=self.metrics.total("yaguar_agent_frames_evicted"),
            wifi_dbm=read_wifi_dbm(cfg.health.wireless_file),
            clock_synced=clock_synced(),
            battery_v=read_battery(cfg.health.battery_file, cfg.health.battery_scale),
            camera_ok=error is None,
            camera_error=error,
        )


class ConfigKeeper:
    """The agent's live config. A pushed ``RemoteConfig`` is validated as JSON, against the contract,
    and merged with the local rules; anything wrong is refused, the old config stays, and ``error``
    says why (the service puts it on the status topic)."""

    def __init__(
        self,
        config: AgentConfig,
        metrics: AgentMetrics,
        on_change: Callable[[AgentConfig], None] | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.on_change = on_change
        self.version = 0
        self.error: str | None = None
        self._refused_payload: bytes | None = None
        self.topic = topics.topic(config.device_id, Kind.CONFIG)

    def handle(self, payload: bytes) -> bool:
        """Apply a config message; True when it changed the config. ``error`` is set on refusal."""
        if payload == self._refused_payload:
            return False  # the same retained message again after a reconnect: already answered
        try:
            remote = parse_json_message(RemoteConfig, self.topic, payload)
        except ProtocolError as exc:
            return self._refuse(payload, f"{exc.reason}: {exc}")
        if remote.version <= self.version:
            log.debug("config: version %d already applied (have %d)", remote.version, self.version)
            return False
        try:
            updated = apply_remote(self.config, remote)
        except ConfigError as exc:
            return self._refuse(payload, f"version {remote.version}: {exc}")
        self.config = updated
        self.version = remote.version
        self.error = None
        self._refused_payload = None
        log.info("config: applied version %d from the station", remote.version)
        if self.on_change is not None:
            self.on_change(updated)
        return True

    def _refuse(self, payload: bytes, why: str) -> bool:
        self.error = why[:500]
        self._refused_payload = payload
        self.metrics.config_rejected.inc()
        log.warning("config: refused the station's config, keeping version %d: %s", self.version, self.error)
        return False
