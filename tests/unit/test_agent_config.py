"""The agent's config: the shipped example parses, typos and out-of-range values are refused in one line,
secrets come from the environment, and a pushed RemoteConfig obeys the same rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from yaguar.agent.config import apply_remote, load_config, parse_config
from yaguar.config import ConfigError
from yaguar.protocol.messages import RemoteConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "systemd" / "agent.example.toml"


def minimal(**extra: object) -> dict:
    return {"device_id": "cam-01", "camera": {"type": "replay", "folder": "/tmp/x"}, **extra}


def test_the_shipped_example_is_valid() -> None:
    config = load_config(EXAMPLE, environ={"YAGUAR_MQTT_PASSWORD": "s3cret"})
    assert config.device_id == "cam-01"
    assert config.camera.type == "picamera2"
    assert config.mqtt.tls is not None
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config)


def test_an_unknown_key_is_refused_with_its_name() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(minimal(capture={"burst_sise": 3}), environ={})
    assert "capture.burst_sise" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (minimal(device_id="Cam_01"), "device_id"),
        (minimal(capture={"burst_size": 0}), "capture.burst_size"),
        (minimal(spool={"policy": "drop_newest"}), "spool.policy"),
        (minimal(mqtt={"port": 70000}), "mqtt.port"),
        (minimal(camera={"type": "webcam"}), "camera"),
        (minimal(illuminator={"night_start": "25:00"}), "illuminator.night_start"),
    ],
)
def test_bad_values_say_where(data: dict, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data, environ={})
    assert str(err.value).startswith(where)


def test_client_certificate_needs_its_key() -> None:
    with pytest.raises(ConfigError, match="cert_file and key_file"):
        parse_config(minimal(mqtt={"tls": {"ca_file": "/ca", "cert_file": "/c"}}), environ={})


def test_unreadable_or_broken_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("device_id = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_keepalive_grows_for_a_slow_uplink() -> None:
    config = parse_config(
        minimal(
            mqtt={"keepalive_s": 30, "max_frame_bytes": 8 * 1024 * 1024, "min_uplink_bytes_per_s": 10_000}
        ),
        environ={},
    )
    # 8 MiB at 10 kB/s takes 839 s: the connection must not be declared dead during that upload.
    assert config.mqtt.effective_keepalive() >= 8 * 1024 * 1024 / 10_000
    fast = parse_config(minimal(mqtt={"keepalive_s": 30, "min_uplink_bytes_per_s": 10**8}), environ={})
    assert fast.mqtt.effective_keepalive() == 30


def test_remote_config_is_merged_and_keeps_secrets() -> None:
    config = parse_config(minimal(), environ={"YAGUAR_MQTT_PASSWORD": "pw"})
    updated = apply_remote(
        config, RemoteConfig(version=2, burst_size=5, pir_holdoff_s=30, night_start="19:00")
    )
    assert (updated.capture.burst_size, updated.pir.holdoff_s, updated.illuminator.night_start) == (
        5,
        30,
        "19:00",
    )
    assert updated.capture.burst_interval_s == config.capture.burst_interval_s
    assert updated.mqtt.password is not None and updated.mqtt.password.get_secret_value() == "pw"


def test_remote_config_that_breaks_a_cross_rule_is_refused() -> None:
    config = parse_config(minimal(timelapse={"interval_s": 20}), environ={})
    with pytest.raises(ConfigError, match="timelapse interval"):
        apply_remote(config, RemoteConfig(version=2, burst_size=30, burst_interval_s=5))
