"""The one config mechanism (yaguar.config): TOML, unknown keys refused, secrets from the environment
or systemd credentials, one ConfigError; backend options typed per backend; limits from the protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from yaguar.agent.config import AgentConfig, parse_config
from yaguar.config import ConfigError, Secret, Section, from_dict, load
from yaguar.engine.backends.base import BackendError
from yaguar.engine.backends.options import (
    AutoOptions,
    OnnxRuntimeOptions,
    OpenCLOptions,
    options_as,
    parse_options,
)
from yaguar.engine.config import PipelineConfig
from yaguar.protocol.limits import MAX_FRAME_BYTES, MAX_FRAME_PIXELS
from yaguar.protocol.validate import FrameLimits
from yaguar.server.config import StationConfig, config_from_dict, load_config


class Mqtt(Section):
    host: str = "localhost"
    password: str | None = None
    tokens: list[str] = Field(default_factory=list)


class Small(Section):
    mqtt: Mqtt = Field(default_factory=Mqtt)


SECRETS = (
    Secret("YAGUAR_X_PASSWORD", ("mqtt", "password")),
    Secret("YAGUAR_X_TOKENS", ("mqtt", "tokens"), True),
)


def test_a_secret_comes_from_a_systemd_credential_when_the_variable_is_unset(tmp_path: Path) -> None:
    (tmp_path / "YAGUAR_X_PASSWORD").write_text("from-credential\n")
    (tmp_path / "YAGUAR_X_TOKENS").write_text("a, b,,")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    config = from_dict(Small, {}, SECRETS, env)
    assert config.mqtt.password == "from-credential" and config.mqtt.tokens == ["a", "b"]
    # the variable wins over the credential
    assert from_dict(Small, {}, SECRETS, {**env, "YAGUAR_X_PASSWORD": "v"}).mqtt.password == "v"
    assert from_dict(Small, {}, SECRETS, {}).mqtt.password is None


def test_the_station_reads_its_secrets_as_credentials(tmp_path: Path) -> None:
    (tmp_path / "YAGUAR_MQTT_PASSWORD").write_text("s3cret")
    (tmp_path / "YAGUAR_API_TOKENS").write_text("t1,t2")
    config = config_from_dict({}, env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert config.mqtt.password is not None and config.mqtt.password.get_secret_value() == "s3cret"
    assert [t.get_secret_value() for t in config.http.api_tokens] == ["t1", "t2"]
    agent = parse_config(
        {"device_id": "cam-01", "camera": {"type": "replay", "folder": "/x"}},
        {"CREDENTIALS_DIRECTORY": str(tmp_path)},
    )
    assert isinstance(agent, AgentConfig) and agent.mqtt.password is not None


def test_an_unreadable_credential_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "YAGUAR_X_PASSWORD").mkdir()  # a folder where the file should be
    with pytest.raises(ConfigError, match="cannot read the credential"):
        from_dict(Small, {}, SECRETS, {"CREDENTIALS_DIRECTORY": str(tmp_path)})


def test_one_error_format(tmp_path: Path) -> None:
    bad = tmp_path / "x.toml"  # by hand: misspelt keys on purpose, which a config writer would refuse
    bad.write_text('[mqtt]\nhots = "a"\nport = 1\n')
    with pytest.raises(ConfigError) as info:
        load(Small, bad)
    assert info.value.problems == [
        "mqtt.hots: Extra inputs are not permitted",
        "mqtt.port: Extra inputs are not permitted",
    ]
    assert str(info.value) == "mqtt.hots: Extra inputs are not permitted (and 1 more)"
    assert info.value.report("yaguar-x").splitlines() == [f"yaguar-x: {p}" for p in info.value.problems]
    with pytest.raises(ConfigError, match="it does not exist"):
        load(Small, tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="mqtt: must be a \\[mqtt\\] table"):
        from_dict(Small, {"mqtt": 5}, SECRETS, {"YAGUAR_X_PASSWORD": "p"})


def test_opencl_refuses_onnxruntime_options() -> None:
    with pytest.raises(BackendError, match="bad OpenCL backend options: threads: Extra inputs"):
        options_as(OpenCLOptions, {"threads": 4})
    with pytest.raises(BackendError, match="bad onnxruntime backend options: fp16"):
        options_as(OnnxRuntimeOptions, {"fp16": True})
    with pytest.raises(BackendError, match="was given OpenCLOptions"):
        options_as(OnnxRuntimeOptions, OpenCLOptions())


def test_auto_splits_one_dict_between_the_two_backends() -> None:
    auto = options_as(AutoOptions, {"cache_dir": "/c", "threads": 2, "device": "rusticl"})
    assert auto.opencl == OpenCLOptions(cache_dir=Path("/c"), device="rusticl")
    assert auto.onnxruntime == OnnxRuntimeOptions(threads=2)
    with pytest.raises(BackendError, match="'colour' is an option of neither"):
        options_as(AutoOptions, {"colour": "blue"})


def test_options_are_discriminated_on_type() -> None:
    assert parse_options({"type": "opencl", "fp16": True}) == OpenCLOptions(fp16=True)
    assert parse_options({"type": "onnxruntime", "threads": 3}) == OnnxRuntimeOptions(threads=3)
    with pytest.raises(BackendError, match="bad OpenCL backend options"):
        parse_options({"type": "opencl", "threads": 3})
    with pytest.raises(BackendError, match="backend options"):
        parse_options({"type": "tpu"})


def test_the_pipeline_gives_each_backend_its_own_options() -> None:
    ort = PipelineConfig(backend="onnxruntime", threads=3).backend_options()
    assert ort == OnnxRuntimeOptions(threads=3)
    opencl = PipelineConfig(backend="opencl", threads=3, opencl_fp16=True, device="gpu").backend_options()
    assert opencl == OpenCLOptions(fp16=True, device="gpu")
    auto = PipelineConfig(backend="auto", threads=3, opencl_autotune=True).backend_options()
    assert isinstance(auto, AutoOptions) and auto.opencl.autotune and auto.onnxruntime.threads == 3


def test_the_frame_limits_come_from_the_protocol() -> None:
    station = load_config(None, env={})
    assert station.ingest.max_payload_bytes == MAX_FRAME_BYTES == FrameLimits().max_payload_bytes
    assert station.ingest.max_pixels == station.pipeline.max_pixels == MAX_FRAME_PIXELS
    agent = parse_config({"device_id": "cam-01", "camera": {"type": "replay", "folder": "/x"}}, {})
    assert agent.mqtt.max_frame_bytes == MAX_FRAME_BYTES
    assert isinstance(station, StationConfig)
