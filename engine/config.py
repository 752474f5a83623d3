"""Configuration of the station pipeline (``[pipeline]`` in station.toml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="run motion, detection and classification on new frames")
