"""The tests' config writer (tests/support/config_files.py) writes what the station and the agent read,
and refuses what they would refuse before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.config_files import write_agent_config, write_station_config
from yaguar.agent.config import load_config as load_agent_config
from yaguar.config import ConfigError
from yaguar.server.config import load_config


def test_station_file_reads_back_with_defaults_and_overrides(tmp_path: Path) -> None:
    look = {"closer_input": [0, 0], "motion_crops": False}
    path = write_station_config(
        tmp_path, "s.toml", mqtt={"port": 1884}, pipeline={"model_dir": tmp_path, "look": look}
    )
    config = load_config(path, env={})
    assert config.storage.database_url == f"sqlite:///{tmp_path / 'station.db'}"
    assert config.storage.media_root == tmp_path / "media"
    assert config.mqtt.port == 1884 and config.mqtt.host == "127.0.0.1"
    assert config.pipeline.model_dir == tmp_path and config.pipeline.look.motion_crops is False
    moved = write_station_config(tmp_path, "moved.toml", storage={"media_root": tmp_path / "elsewhere"})
    assert load_config(moved, env={}).storage.database_url == config.storage.database_url  # only media moved


def test_a_misspelt_key_is_refused_and_nothing_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.hots: Extra inputs"):
        write_station_config(tmp_path, mqtt={"hots": "127.0.0.1"})
    with pytest.raises(ConfigError, match="camera"):
        write_agent_config(tmp_path / "agent.toml", {"device_id": "cam-01", "camera": {"kind": "replay"}})
    assert list(tmp_path.iterdir()) == []


def test_agent_file_reads_back(tmp_path: Path) -> None:
    data = {
        "device_id": "cam-01",
        "camera": {"type": "replay", "folder": tmp_path},
        "spool": {"dir": tmp_path},
    }
    config = load_agent_config(write_agent_config(tmp_path / "agent.toml", data), environ={})
    assert config.device_id == "cam-01" and config.spool.dir == tmp_path
