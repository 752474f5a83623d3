"""The systemd side: the unit passes `systemd-analyze verify` and rates "OK" or better in
`systemd-analyze security` (where systemd-analyze exists), and the agent speaks sd_notify: READY=1
once started, WATCHDOG=1 while healthy, STOPPING=1 on SIGTERM, exit status 0."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.broker import Broker

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
UNIT = SYSTEMD / "yaguar-agent.service"
ANALYZE = shutil.which("systemd-analyze")
OS_UNITS = next(
    (p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()), None
)


@pytest.mark.skipif(ANALYZE is None or OS_UNITS is None, reason="systemd-analyze is not installed here")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # A throw-away root with the OS's units and the agent's executable where the unit expects it, so
    # verify checks our unit, not whether this machine has the agent installed in /opt.
    root = tmp_path / "root"
    shutil.copytree(OS_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    exe = root / "opt/yaguar/venv/bin/yaguar-agent"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    result = subprocess.run(
        [ANALYZE, "verify", f"--root={root}", "--man=no", f"/etc/systemd/system/{UNIT.name}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "yaguar-agent.service" not in result.stderr  # no warning about our unit


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed here")
def test_unit_rates_ok_or_better_in_systemd_analyze_security() -> None:
    result = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", result.stdout)
    assert match, result.stdout[-500:] + result.stderr[-500:]
    score, rating = float(match.group(1)), match.group(2)
    assert rating in ("OK", "SAFE", "PERFECT"), f"exposure {score} {rating}"
    assert score < 2.5


def test_install_script_is_valid_bash() -> None:
    result = subprocess.run(
        ["bash", "-n", str(SYSTEMD / "install-agent.sh")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_agent_speaks_sd_notify(broker: Broker, tmp_path: Path, images: Path) -> None:
    spool = tmp_path / "spool"
    config = tmp_path / "agent.toml"
    config.write_text(
        f'device_id = "cam-01"\npin_factory = "mock"\n[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        f'[camera]\ntype = "replay"\nfolder = "{images / "classic"}"\n[pir]\nenabled = false\n'
        f'[spool]\ndir = "{spool}"\n'
    )
    notify_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    sock.settimeout(0.2)
    env = {**os.environ, "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "600000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "yaguar.agent.cli", "--config", str(config), "run"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    messages: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and messages.count("WATCHDOG=1") < 3:
            try:
                messages.append(sock.recv(1024).decode())
            except TimeoutError:
                continue
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
        while True:
            try:
                messages.append(sock.recv(1024).decode())
            except TimeoutError:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert proc.returncode == 0, stderr.decode()[-1000:]
    assert messages[0] == "READY=1"
    assert messages.count("WATCHDOG=1") >= 3
    assert messages[-1] == "STOPPING=1"
