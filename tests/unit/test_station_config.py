"""The station's config: the shipped example validates; bad values and unknown keys are refused with a
line each; secrets come from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from yaguar.config import ConfigError
from yaguar.server.config import config_from_dict, load_config

REPO = Path(__file__).resolve().parents[2]


def test_the_example_config_validates() -> None:
    config = load_config(REPO / "systemd" / "station.example.toml", env={})
    assert config.mqtt.port == 8883
    assert config.storage.sqlite_synchronous == "FULL"


def test_problems_are_listed_one_per_line(tmp_path: Path) -> None:
    # by hand, not with tests/support/config_files.py: that refuses these mistakes before writing them
    bad = tmp_path / "station.toml"
    bad.write_text('[mqtt]\nport = 70000\ncolour = "red"\n[storage]\nsqlite_synchronous = "SOMETIMES"\n')
    with pytest.raises(ConfigError) as info:
        load_config(bad, env={})
    lines = info.value.problems
    assert len(lines) == 3 and "\n" not in str(info.value) and str(info.value).endswith("(and 2 more)")
    assert any(line.startswith("mqtt.port:") for line in lines)
    assert any("mqtt.colour" in line and "Extra inputs" in line for line in lines)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[mqtt\nport = 1")  # not TOML, so by hand
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken, env={})


def test_secrets_come_from_the_environment() -> None:
    config = config_from_dict({}, env={"YAGUAR_MQTT_PASSWORD": "s3cret", "YAGUAR_API_TOKENS": "a, b,,"})
    assert config.mqtt.password.get_secret_value() == "s3cret"
    assert [t.get_secret_value() for t in config.http.api_tokens] == ["a", "b"]
    assert "s3cret" not in repr(config)


def test_tls_needs_both_certificate_and_key() -> None:
    with pytest.raises(ConfigError, match="cert_file and key_file"):
        config_from_dict({"mqtt": {"tls": {"ca_file": "/ca.crt", "cert_file": "/c.crt"}}}, env={})
