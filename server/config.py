"""The station's configuration: one TOML file read through ``yaguar.config`` (unknown keys refused,
secrets from the environment or systemd credentials, ``ConfigError``).

Sections: ``[mqtt]``, ``[storage]``, ``[ingest]``, ``[http]``, plus ``[pipeline]`` (engine),
``[alerts]`` and ``[dashboard]``, whose models live beside the code they configure.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr

from yaguar.alerts.config import AlertsConfig
from yaguar.config import Secret, Section, TlsConfig, from_dict, load
from yaguar.engine.config import PipelineConfig
from yaguar.protocol.limits import MAX_FRAME_BYTES, MAX_FRAME_PIXELS
from yaguar.protocol.topics import SHARED_GROUP

from .dashboard_config import DashboardConfig
from .devices import DevicesConfig

# Secrets never live in the TOML file: these variables (or systemd credentials of the same names)
# fill them in.
STATION_SECRETS = (
    Secret("YAGUAR_MQTT_PASSWORD", ("mqtt", "password")),
    Secret("YAGUAR_API_TOKENS", ("http", "api_tokens"), comma_separated=True),
    Secret("YAGUAR_TWILIO_AUTH_TOKEN", ("alerts", "twilio_auth_token")),
    Secret("YAGUAR_GSM_PIN", ("alerts", "gsm_pin")),
    Secret("YAGUAR_SESSION_SECRET", ("dashboard", "session_secret")),
)


class MqttConfig(Section):
    host: str = Field(default="127.0.0.1", description="broker host name or address")
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = Field(default=None, max_length=63)
    password: SecretStr | None = Field(default=None, description="from YAGUAR_MQTT_PASSWORD")
    tls: TlsConfig | None = None
    client_id: str = Field(
        default="yaguar-station-1",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="unique per station worker: the broker keeps this worker's session under it",
    )
    shared_group: str = Field(
        default=SHARED_GROUP,
        pattern=r"^[A-Za-z0-9_-]{0,32}$",
        description="MQTT v5 shared-subscription group, so several workers split the stream; empty: none",
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    session_expiry_s: int = Field(
        default=7 * 24 * 3600, ge=60, le=2**32 - 2, description="how long the broker keeps our queue"
    )
    unhealthy_after_s: float = Field(
        default=300,
        ge=1,
        le=86_400,
        description="without the broker this long, the service watchdog is starved",
    )
    receive_maximum: int = Field(
        default=200, ge=1, le=65535, description="unacknowledged frames the broker may send at once"
    )


class StorageConfig(Section):
    database_url: str = Field(
        default="sqlite:///var/lib/yaguar/station.db", description="SQLAlchemy URL; SQLite or PostgreSQL"
    )
    media_root: Path = Field(default=Path("/var/lib/yaguar/media"), description="where frames are written")
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = Field(
        default="FULL", description="FULL: a committed frame survives a power cut"
    )
    busy_timeout_ms: int = Field(default=5000, ge=0, le=600_000)
    drop_frames_from_cache: bool = Field(
        default=True,
        description="free a new frame's pages from the OS page cache once it is on disk (keeps the cache "
        "for the database and thumbnails)",
    )


class IngestConfig(Section):
    max_payload_bytes: int = Field(default=MAX_FRAME_BYTES, ge=1024, le=256 * 1024 * 1024)
    max_pixels: int = Field(
        default=MAX_FRAME_PIXELS, ge=10_000, le=500_000_000, description="refuse bigger headers"
    )
    max_clock_skew_s: int = Field(default=24 * 3600, ge=60, description="how far ahead a capture time may be")
    accept_unknown_devices: bool = Field(
        default=True, description="false: only devices added with `yaguar-station devices add`"
    )
    batch_max: int = Field(default=64, ge=1, le=10_000, description="frames committed in one transaction")
    batch_wait_ms: int = Field(default=20, ge=0, le=5000, description="how long to wait to fill a batch")
    queue_size: int = Field(
        default=400, ge=1, le=100_000, description="received frames waiting for the writer"
    )
    retry_delay_s: float = Field(default=2.0, gt=0, le=300, description="pause after a failed commit")
    # Video clips from the field (issue 16, protocol/SPEC.md "Clip chunks")
    clips: bool = Field(default=False, description="receive clips on yaguar/v1/+/clip and analyse them")
    clip_sample_s: float = Field(default=1.0, gt=0, le=60, description="a clip frame analysed this often")
    clip_incomplete_s: float = Field(
        default=6 * 3600, ge=60, description="a clip missing chunks this long is dead-lettered"
    )


class HttpConfig(Section):
    host: str = Field(default="127.0.0.1", description="address the API and dashboard listen on")
    port: int = Field(default=8080, ge=0, le=65535, description="0 picks a free port")
    api_tokens: list[SecretStr] = Field(default_factory=list, description="from YAGUAR_API_TOKENS")
    metrics_access: Literal["open", "loopback", "token"] = Field(
        default="open", description="who may read /metrics: anyone, this PC only, or with an API token"
    )
    client_max_size: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    public_url: str = Field(default="http://127.0.0.1:8080", description="base of links sent in alerts")


class StationConfig(Section):
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    devices: DevicesConfig = Field(default_factory=DevicesConfig)


def load_config(path: Path | None, env: Mapping[str, str] | None = None) -> StationConfig:
    """Read and validate a station config file (or the defaults when ``path`` is None)."""
    return load(StationConfig, path, STATION_SECRETS, env)


def config_from_dict(data: dict[str, Any], env: Mapping[str, str] | None = None) -> StationConfig:
    return from_dict(StationConfig, data, STATION_SECRETS, env)
