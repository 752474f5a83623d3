"""Checking our systemd units with `systemd-analyze`: verify in a throw-away root (the OS's units, and
the service's executable where the unit expects it, so verify checks our unit, not whether this machine
has the service installed), and the `security` exposure score."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ANALYZE = shutil.which("systemd-analyze")
OS_UNITS = next(
    (p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()), None
)
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed here")
needs_os_units = pytest.mark.skipif(
    ANALYZE is None or OS_UNITS is None, reason="systemd-analyze is not installed here"
)


def verify(unit: Path, executable: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` of ``unit``, with ``executable`` (an absolute path) present."""
    assert ANALYZE is not None and OS_UNITS is not None
    root = workdir / "root"
    shutil.copytree(OS_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    exe = root / executable.lstrip("/")
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    return subprocess.run(
        [ANALYZE, "verify", f"--root={root}", "--man=no", f"/etc/systemd/system/{unit.name}"],
        capture_output=True,
        text=True,
        check=False,
    )


def exposure(unit: Path) -> tuple[float, str]:
    """The overall exposure score and its rating (e.g. 1.6, "OK")."""
    assert ANALYZE is not None
    result = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", result.stdout)
    assert match, result.stdout[-500:] + result.stderr[-500:]
    return float(match.group(1)), match.group(2)


class NotifySocket:
    """What systemd would hear: an AF_UNIX datagram socket for NOTIFY_SOCKET, and the messages on it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def env(self, watchdog_s: float) -> dict[str, str]:
        return {**os.environ, "NOTIFY_SOCKET": self.path, "WATCHDOG_USEC": str(int(watchdog_s * 1e6))}

    def receive_until(self, done: Callable[[list[str]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done(self.messages):
            try:
                self.messages.append(self.sock.recv(1024).decode())
            except TimeoutError:
                continue

    def close(self) -> None:
        self.sock.close()
