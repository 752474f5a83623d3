"""Configuration of the dashboard (``[dashboard]`` in station.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from yaguar.config import Section

Language = Literal["es", "en"]


class ExportMetadata(Section):
    """What Camtrap DP asks of a data package that the station cannot know by itself."""

    project_title: str = Field(default="Yaguar camera traps", min_length=1, max_length=200)
    project_acronym: str | None = Field(default=None, max_length=40)
    project_description: str | None = Field(default=None, max_length=2000)
    contributor: str = Field(
        default="Yaguar station", min_length=1, max_length=200, description="who made it"
    )
    contributor_email: str | None = Field(default=None, max_length=200)
    organization: str | None = Field(default=None, max_length=200)
    sampling_design: Literal[
        "simpleRandom", "systematicRandom", "clusteredRandom", "experimental", "targeted", "opportunistic"
    ] = Field(default="targeted", description="Camtrap DP project.samplingDesign")
    license: str = Field(default="CC-BY-4.0", max_length=40, description="SPDX id of the data licence")
    latitude: float | None = Field(
        default=None, ge=-90, le=90, description="station position, for cameras with no position of their own"
    )
    longitude: float | None = Field(default=None, ge=-180, le=180)
    coordinate_uncertainty_m: int | None = Field(default=None, ge=1, le=100_000)


class DashboardConfig(Section):
    enabled: bool = Field(default=True, description="serve the web pages (the REST API is always on)")
    default_language: Language = Field(default="es", description="language of the pages until a user picks")
    session_secret: SecretStr | None = Field(
        default=None,
        description="from YAGUAR_SESSION_SECRET; unset: a random key, so log-ins end at restart",
    )
    cookie_secure: bool = Field(
        default=False, description="send the session cookie over HTTPS only (true behind a TLS proxy)"
    )
    session_max_age_s: int = Field(
        default=12 * 3600, ge=300, le=90 * 24 * 3600, description="log-in lifetime"
    )
    login_free_failures: int = Field(
        default=3, ge=1, le=100, description="wrong passwords per user name or address before any wait"
    )
    login_backoff_s: float = Field(
        default=2.0, gt=0, le=3600, description="the first wait; each further failure doubles it"
    )
    login_backoff_max_s: float = Field(default=900.0, gt=0, le=86_400, description="the longest wait")
    page_size: int = Field(default=50, ge=5, le=500, description="events per feed page")
    thumb_px: int = Field(default=320, ge=64, le=1024, description="longest side of a thumbnail")
    thumb_dir: Path | None = Field(default=None, description="thumbnail cache; unset: <media_root>/.thumbs")
    export: ExportMetadata = Field(default_factory=ExportMetadata)
