"""What the data API answers, as pydantic models: they validate nothing on the way out but describe
every field in the OpenAPI document generated from the handlers' annotations."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class EventOut(BaseModel):
    id: int
    device_id: str
    started_at: datetime
    ended_at: datetime
    local_start: str = Field(description="start in the camera's local time with its offset")
    utc_offset_min: int
    category: str = Field(description="animal, person, vehicle or blank")
    species: str | None = Field(description="the machine's scientific name")
    count: int
    confidence: float
    reviewed_species: str | None = Field(default=None, description="the newest human review's answer")
    reviewed_category: str | None = None
    frame_count: int
    url: str


class EventPage(BaseModel):
    items: list[EventOut]
    next_before_id: int | None = Field(description="pass as before_id for the next (older) page")


class DetectionOut(BaseModel):
    id: int
    media_id: int
    event_id: int | None
    device_id: str
    captured_at: datetime
    category: str
    label: str
    confidence: float
    bbox: list[float] = Field(description="[x, y, width, height], relative to the image (MegaDetector)")
    species: str | None
    species_confidence: float | None
    reviewed_species: str | None = Field(default=None, description="a reviewer's answer for this box")
    model: str


class DetectionPage(BaseModel):
    items: list[DetectionOut]
    next_before_id: int | None


class SpeciesOut(BaseModel):
    species: str
    detections: int
    individuals: int
    cameras: list[str]


class SpeciesSummary(BaseModel):
    start: str
    end: str
    items: list[SpeciesOut]


class AnalysisOut(BaseModel):
    analysis: str
    start: str
    end: str
    camera: str | None
    species: str | None = Field(description="the species the numbers are about (activity, history)")
    columns: list[str]
    rows: list[dict[str, str | int | float | None]] = Field(description="empty cells (null) are 'no data'")
    summary: dict[str, float | int] | None = None


class DeploymentOut(BaseModel):
    id: int
    device_id: str
    start: datetime
    end: datetime | None
    latitude: float
    longitude: float
    uncertainty_m: float | None
    site: str | None
    habitat: str | None
    camera_model: str | None
    camera_height_m: float | None
    bait: bool
    comments: str | None


class DeploymentList(BaseModel):
    items: list[DeploymentOut]


class ApiError(BaseModel):
    error: str
    detail: str
