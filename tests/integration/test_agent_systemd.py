"""The systemd side: the unit passes `systemd-analyze verify` and rates "OK" or better in
`systemd-analyze security` (where systemd-analyze exists), and the agent speaks sd_notify: READY=1
once started, WATCHDOG=1 while healthy, STOPPING=1 on SIGTERM, exit status 0."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.support.broker import Broker
from tests.support.config_files import write_agent_config
from tests.support.systemd_units import NotifySocket, exposure, needs_analyze, needs_os_units, verify

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
UNIT = SYSTEMD / "yaguar-agent.service"


@needs_os_units
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    result = verify(UNIT, "/opt/yaguar/venv/bin/yaguar-agent", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "yaguar-agent.service" not in result.stderr  # no warning about our unit


@needs_analyze
def test_unit_rates_ok_or_better_in_systemd_analyze_security() -> None:
    score, rating = exposure(UNIT)
    assert rating in ("OK", "SAFE", "PERFECT"), f"exposure {score} {rating}"
    assert score < 2.5


def test_install_script_is_valid_bash() -> None:
    result = subprocess.run(
        ["bash", "-n", str(SYSTEMD / "install-agent.sh")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_agent_speaks_sd_notify(broker: Broker, tmp_path: Path, images: Path) -> None:
    spool = tmp_path / "spool"
    config = write_agent_config(
        tmp_path / "agent.toml",
        {
            "device_id": "cam-01",
            "pin_factory": "mock",
            "mqtt": {"host": broker.host, "port": broker.port},
            "camera": {"type": "replay", "folder": images / "classic"},
            "pir": {"enabled": False},
            "spool": {"dir": spool},
        },
    )
    notify = NotifySocket(tmp_path / "notify.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "yaguar.agent.cli", "--config", str(config), "run"],
        env=notify.env(0.6),
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    try:
        notify.receive_until(lambda m: m.count("WATCHDOG=1") >= 3, 20)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
        notify.receive_until(lambda m: False, 0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()
    messages = notify.messages
    assert proc.returncode == 0, stderr.decode()[-1000:]
    assert messages[0] == "READY=1"
    assert messages.count("WATCHDOG=1") >= 3
    assert messages[-1] == "STOPPING=1"
