"""The agent's configuration: one TOML file read through ``yaguar.config`` (unknown keys refused,
secrets from the environment or systemd credentials, ``ConfigError``).

Sections: ``[mqtt]``, ``[camera]``, ``[capture]``, ``[pir]``, ``[timelapse]``, ``[illuminator]``,
``[spool]``, ``[health]``. Every field has bounds; an unknown key is an error, so a typo in the field
never silently falls back to a default.

The station may push a ``RemoteConfig`` (retained); ``apply_remote`` merges it into a copy of this config
and validates the result with the same rules, so a pushed value can never bypass a bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, model_validator

from yaguar.config import Secret, Section, TlsConfig, from_dict, load, validate
from yaguar.protocol.limits import MAX_FRAME_BYTES
from yaguar.protocol.messages import RemoteConfig
from yaguar.protocol.topics import DEVICE_ID_PATTERN

# Secrets never live in the TOML file: this variable (or the systemd credential of that name) fills it in.
AGENT_SECRETS = (Secret("YAGUAR_MQTT_PASSWORD", ("mqtt", "password")),)
HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class MqttConfig(Section):
    host: str = Field(default="127.0.0.1", min_length=1, max_length=253, description="broker host or address")
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = Field(default=None, max_length=63, description="default: the device id")
    password: SecretStr | None = Field(default=None, description="from YAGUAR_MQTT_PASSWORD")
    tls: TlsConfig | None = None
    keepalive_s: int = Field(default=60, ge=2, le=3600, description="lower bound; raised for slow uplinks")
    min_uplink_bytes_per_s: int = Field(
        default=20_000,
        ge=1000,
        le=10**9,
        description="the slowest uplink to survive: keepalive is raised so the largest frame fits in it",
    )
    inflight_window: int = Field(default=4, ge=1, le=100, description="frames published but not yet acked")
    ack_timeout_s: float = Field(
        default=60, ge=1, le=3600, description="resend a frame with no Ack after this"
    )
    reconnect_min_s: float = Field(default=1, ge=0.05, le=60)
    reconnect_max_s: float = Field(default=120, ge=0.1, le=3600)
    max_frame_bytes: int = Field(
        default=MAX_FRAME_BYTES,
        ge=1024,
        le=256 * 1024 * 1024,
        description="the station's payload limit; a bigger frame is quarantined, never sent",
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> MqttConfig:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("mqtt: reconnect_min_s must not exceed reconnect_max_s")
        return self

    def effective_keepalive(self) -> int:
        """Keepalive long enough that the largest frame uploads on the slowest uplink without the broker
        (1.5 x keepalive) or paho (no PINGRESP within one keepalive) closing the connection."""
        upload_s = self.max_frame_bytes / self.min_uplink_bytes_per_s
        return max(self.keepalive_s, min(65535, math.ceil(upload_s * 1.2)))


class ReplayCameraConfig(Section):
    type: Literal["replay"] = "replay"
    folder: Path = Field(description="folder of JPEG files played in name order, looping")
    loop: bool = Field(default=True, description="start again at the first file after the last")
    skip_invalid: bool = Field(default=True, description="leave out empty files when the folder is read")


class OpenCvCameraConfig(Section):
    type: Literal["opencv"] = "opencv"
    device: int | str = Field(default=0, description="video device index or path (/dev/video0)")
    width: int | None = Field(default=None, ge=16, le=10000)
    height: int | None = Field(default=None, ge=16, le=10000)
    warmup_frames: int = Field(default=2, ge=0, le=30, description="frames dropped while exposure settles")


class Picamera2Config(Section):
    type: Literal["picamera2"] = "picamera2"
    width: int = Field(default=2028, ge=16, le=10000)
    height: int = Field(default=1520, ge=16, le=10000)


CameraConfig = Annotated[
    ReplayCameraConfig | OpenCvCameraConfig | Picamera2Config, Field(discriminator="type")
]


class CaptureConfig(Section):
    burst_size: int = Field(default=3, ge=1, le=30, description="frames per trigger")
    burst_interval_s: float = Field(default=0.5, ge=0.0, le=60, description="time between burst frames")
    jpeg_quality: int = Field(default=85, ge=30, le=100, description="quality when a frame is re-encoded")
    max_send_px: int | None = Field(
        default=None, ge=320, le=10000, description="longest side sent; larger frames are scaled down"
    )
    max_send_bytes: int = Field(
        default=4 * 1024 * 1024, ge=10_000, le=64 * 1024 * 1024, description="re-encode smaller above this"
    )
    full_res_dir: Path | None = Field(default=None, description="keep the full-resolution file here too")
    pretrigger_frames: int = Field(
        default=0, ge=0, le=64, description="frames from before the trigger (0: off; it costs power)"
    )
    pretrigger_fps: float = Field(
        default=2.0, gt=0, le=30, description="frame rate of the pre-trigger buffer"
    )
    camera_retry_s: float = Field(default=5.0, ge=0.1, le=3600, description="wait before reopening a camera")


class PirConfig(Section):
    enabled: bool = True
    pin: int | str = Field(default=17, description="GPIO of the PIR output (BCM number or 'GPIO17')")
    queue_len: int = Field(default=1, ge=1, le=100, description="samples averaged (gpiozero)")
    threshold: float = Field(default=0.5, gt=0, lt=1, description="fraction of samples that must be high")
    sample_rate: float = Field(default=20, ge=1, le=1000, description="samples per second")
    holdoff_s: float = Field(default=10, ge=0, le=3600, description="one animal, one burst")


class TimelapseConfig(Section):
    interval_s: float | None = Field(default=None, ge=0.1, le=86400, description="None: no timelapse")


class IlluminatorConfig(Section):
    pin: int | str | None = Field(default=None, description="GPIO of the IR illuminator; None: none")
    night_start: str = Field(default="18:30", pattern=HHMM, description="local time")
    night_end: str = Field(default="06:00", pattern=HHMM, description="local time")
    light_sensor_pin: int | str | None = Field(
        default=None, description="digital light sensor; when set it decides night instead of the clock"
    )
    dark_when_active: bool = Field(default=True, description="the sensor output is high when it is dark")


class ClipsConfig(Section):
    """Video clips instead of bursts (issue 16): an H.264 ring with pre-roll, sent in chunks."""

    enabled: bool = Field(default=False, description="triggers record clips instead of bursts")
    dir: Path = Field(default=Path("/var/lib/yaguar-agent/clips"), description="clips being recorded")
    fps: float = Field(default=10.0, gt=0, le=60, description="frame rate of the ring and the clips")
    pre_roll_s: float = Field(default=3.0, ge=0, le=30, description="seconds kept from before the trigger")
    post_roll_s: float = Field(default=5.0, gt=0, le=120, description="seconds recorded after it")
    width: int = Field(default=1280, ge=160, le=3840, description="clips are shrunk to this width")
    chunk_bytes: int = Field(
        default=256 * 1024, ge=16 * 1024, le=4 * 1024 * 1024, description="bytes per chunk on the wire"
    )


class SpoolConfig(Section):
    dir: Path = Field(default=Path("/var/lib/yaguar-agent/spool"), description="on-disk queue")
    max_bytes: int = Field(default=512 * 1024 * 1024, ge=64 * 1024, le=2**50, description="byte cap")
    policy: Literal["drop_oldest", "refuse_new"] = Field(default="drop_oldest", description="when full")
    fsync: bool = Field(default=True, description="false only for benchmarks: a power cut may lose frames")
    seq_block: int = Field(
        default=64, ge=1, le=1_000_000, description="sequence numbers leased per disk write"
    )


class HealthConfig(Section):
    heartbeat_interval_s: float = Field(default=300, ge=1, le=3600)
    battery_file: Path | None = Field(default=None, description="sysfs file with the battery voltage")
    battery_scale: float = Field(default=1e-6, gt=0, description="volts per unit in battery_file (uV: 1e-6)")
    wireless_file: Path = Field(default=Path("/proc/net/wireless"))
    thermal_file: Path = Field(default=Path("/sys/class/thermal/thermal_zone0/temp"))


class AgentConfig(Section):
    device_id: str = Field(pattern=DEVICE_ID_PATTERN, description="this camera's id, its MQTT user name")
    pin_factory: Literal["default", "mock"] = Field(
        default="default", description="'mock': gpiozero MockFactory, for demos and tests off a Pi"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    camera: CameraConfig
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    pir: PirConfig = Field(default_factory=PirConfig)
    timelapse: TimelapseConfig = Field(default_factory=TimelapseConfig)
    illuminator: IlluminatorConfig = Field(default_factory=IlluminatorConfig)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    clips: ClipsConfig = Field(default_factory=ClipsConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)

    @model_validator(mode="after")
    def _cross_rules(self) -> AgentConfig:
        burst_s = (self.capture.burst_size - 1) * self.capture.burst_interval_s
        interval = self.timelapse.interval_s
        if interval is not None and burst_s >= interval:
            raise ValueError(
                f"a burst lasts {burst_s:g} s, not shorter than the {interval:g} s timelapse interval"
            )
        if self.capture.max_send_bytes > self.mqtt.max_frame_bytes:
            raise ValueError("capture.max_send_bytes must not exceed mqtt.max_frame_bytes")
        return self


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> AgentConfig:
    """Read and validate the TOML file; ``ConfigError`` says what is wrong."""
    return load(AgentConfig, path, AGENT_SECRETS, environ)


def parse_config(data: dict[str, Any], environ: Mapping[str, str] | None = None) -> AgentConfig:
    return from_dict(AgentConfig, data, AGENT_SECRETS, environ)


def apply_remote(config: AgentConfig, remote: RemoteConfig) -> AgentConfig:
    """The config with the station's pushed settings merged in, validated with the local rules.

    Raises ``ConfigError`` when the result breaks a rule; the caller keeps its old config then.
    """
    data = config.model_dump()
    # Secrets do not survive model_dump as plain text; put the real value back.
    if config.mqtt.password is not None:
        data["mqtt"]["password"] = config.mqtt.password.get_secret_value()
    mapping = {
        "burst_size": ("capture", "burst_size"),
        "burst_interval_s": ("capture", "burst_interval_s"),
        "jpeg_quality": ("capture", "jpeg_quality"),
        "max_send_px": ("capture", "max_send_px"),
        "pir_holdoff_s": ("pir", "holdoff_s"),
        "timelapse_interval_s": ("timelapse", "interval_s"),
        "heartbeat_interval_s": ("health", "heartbeat_interval_s"),
        "night_start": ("illuminator", "night_start"),
        "night_end": ("illuminator", "night_end"),
    }
    for field, (section, key) in mapping.items():
        value = getattr(remote, field)
        if value is not None:
            data[section][key] = value
    return validate(AgentConfig, data)
