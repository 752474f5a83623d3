"""The station's systemd side, tested like the agent's: the unit passes `systemd-analyze verify` and
scores 2.5 or less in `systemd-analyze security`, and the station speaks sd_notify: READY=1 once
started, WATCHDOG=1 only while healthy (a dead broker starves it, with the reason in STATUS=),
STOPPING=1 on SIGTERM, exit status 0."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.support.broker import Broker
from tests.support.config_files import write_station_config
from tests.support.systemd_units import NotifySocket, exposure, needs_analyze, needs_os_units, verify

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
UNIT = SYSTEMD / "yaguar-station.service"


@needs_os_units
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    result = verify(UNIT, "/opt/yaguar/.venv/bin/yaguar-station", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "yaguar-station.service" not in result.stderr  # no warning about our unit


@needs_analyze
def test_unit_exposure_is_at_most_2_5() -> None:
    score, rating = exposure(UNIT)
    assert score <= 2.5, f"exposure {score} {rating}"
    assert "Type=notify" in UNIT.read_text() and "WatchdogSec=" in UNIT.read_text()


def test_station_feeds_the_watchdog_only_while_healthy(broker: Broker, tmp_path: Path) -> None:
    config = write_station_config(
        tmp_path,
        mqtt={"host": broker.host, "port": broker.port, "unhealthy_after_s": 1},
        http={"port": 0},
        pipeline={"enabled": False},
    )
    notify = NotifySocket(tmp_path / "notify.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "yaguar.server.cli", "--config", str(config), "run"],
        env=notify.env(0.6),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    messages = notify.messages
    try:
        notify.receive_until(lambda m: m.count("WATCHDOG=1") >= 3, 60)
        assert messages[0] == "READY=1", messages
        assert messages.count("WATCHDOG=1") >= 3, messages
        broker.kill()
        notify.receive_until(lambda m: any(x.startswith("STATUS=no broker") for x in m), 20)
        unhealthy = next(i for i, m in enumerate(messages) if m.startswith("STATUS=no broker"))
        notify.receive_until(lambda m: False, 2)  # two seconds: ten watchdog periods
        assert "WATCHDOG=1" not in messages[unhealthy:], messages[unhealthy:]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        notify.receive_until(lambda m: "STOPPING=1" in m, 2)
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()
    assert proc.returncode == 0, stderr.decode()[-1000:]
    assert "station unhealthy (the watchdog is not fed): no broker connection" in stderr.decode()
    assert messages[-1] == "STOPPING=1"
