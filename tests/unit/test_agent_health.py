"""Health readings (where readable) and the pushed config: applied, or refused with the old one kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.agent_support import agent_config
from yaguar.agent.health import ConfigKeeper, HealthReporter, read_battery, read_cpu_temp, read_wifi_dbm
from yaguar.agent.metrics import AgentMetrics
from yaguar.protocol.messages import Heartbeat

WIRELESS = """Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE
 face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22
 wlan0: 0000   48.  -62.  -256        0      0      0      0     17        0
"""


def test_readings_from_sysfs_and_proc(tmp_path: Path) -> None:
    (tmp_path / "wireless").write_text(WIRELESS)
    (tmp_path / "temp").write_text("48312\n")
    (tmp_path / "volt").write_text("3712000\n")
    assert read_wifi_dbm(tmp_path / "wireless") == -62.0
    assert read_cpu_temp(tmp_path / "temp") == pytest.approx(48.312)
    assert read_battery(tmp_path / "volt", 1e-6) == pytest.approx(3.712)
    assert read_wifi_dbm(tmp_path / "missing") is None
    assert read_cpu_temp(tmp_path / "missing") is None
    assert read_battery(None, 1e-6) is None


def test_heartbeat_carries_counters_and_the_camera_error(tmp_path: Path) -> None:
    (tmp_path / "wireless").write_text(WIRELESS)
    config = agent_config(tmp_path, None, tmp_path, health={"wireless_file": str(tmp_path / "wireless")})
    metrics = AgentMetrics()
    metrics.frames_captured.inc(5)
    metrics.frames_sent.inc(3)
    metrics.frames_evicted.labels(policy="drop_oldest").inc(2)
    reporter = HealthReporter(
        "cam-01",
        lambda: config,
        metrics,
        lambda: (2, 1234),
        lambda: "camera returned nothing",
        "0.1.0",
        lambda: 7,
    )
    beat = reporter.heartbeat()
    assert (beat.frames_captured, beat.frames_sent, beat.frames_evicted) == (5, 3, 2)
    assert (beat.spool_depth, beat.spool_bytes, beat.config_version) == (2, 1234, 7)
    assert beat.camera_ok is False and beat.camera_error == "camera returned nothing"
    assert beat.wifi_dbm == -62.0
    assert beat.sent_at.utcoffset() is not None
    # What goes on the wire is what the contract accepts.
    Heartbeat.model_validate_json(beat.to_json())


def keeper(tmp_path: Path, **sections: object) -> tuple[ConfigKeeper, list]:
    changes: list = []
    config = agent_config(tmp_path, None, tmp_path, **sections)
    return ConfigKeeper(config, AgentMetrics(), on_change=changes.append), changes


def test_a_valid_config_is_applied_without_restart(tmp_path: Path) -> None:
    k, changes = keeper(tmp_path)
    assert k.handle(json.dumps({"v": 1, "version": 3, "burst_size": 6, "heartbeat_interval_s": 30}).encode())
    assert k.config.capture.burst_size == 6 and k.config.health.heartbeat_interval_s == 30
    assert k.version == 3 and k.error is None and len(changes) == 1
    # The same retained message after a reconnect, or an older one, changes nothing.
    assert not k.handle(json.dumps({"v": 1, "version": 3, "burst_size": 9}).encode())
    assert not k.handle(json.dumps({"v": 1, "version": 2, "burst_size": 9}).encode())
    assert k.config.capture.burst_size == 6


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"{not json", "bad_json"),
        (b'{"v": 1, "version": 4, "burst_size": 99}', "burst_size"),
        (b'{"v": 1, "version": 4, "flash": true}', "flash"),
        (b'{"v": 2, "version": 4}', "bad_message"),
        (b'{"v": 1, "version": 4, "burst_size": 30, "burst_interval_s": 5}', "timelapse interval"),
    ],
)
def test_an_invalid_config_is_refused_and_the_old_one_stays(tmp_path: Path, payload: bytes, why: str) -> None:
    k, changes = keeper(tmp_path, timelapse={"interval_s": 60})
    before = k.config
    assert not k.handle(payload)
    assert k.config is before and k.version == 0 and changes == []
    assert k.error is not None and why in k.error
    assert k.metrics.total("yaguar_agent_config_rejected") == 1
    assert not k.handle(payload)  # redelivered (retained): not counted twice
    assert k.metrics.total("yaguar_agent_config_rejected") == 1
    assert k.handle(b'{"v": 1, "version": 5, "burst_size": 2}')  # a good one clears the error
    assert k.error is None
