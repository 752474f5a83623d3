"""What the data API answers, as pydantic models: they validate nothing on the way out but describe
every field in the OpenAPI document generated from the handlers' annotations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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


class DeviceOut(BaseModel):
    id: str
    name: str | None
    registered: bool = Field(description="added with `yaguar-station devices add`")
    revoked: bool
    status: str | None = Field(description="online or offline, from the camera's retained status")
    status_at: datetime | None
    first_seen: datetime | None
    last_seen: datetime | None
    last_heartbeat: dict[str, Any] | None = Field(description="battery, disk, spool, clock, as sent")


class DeviceList(BaseModel):
    items: list[DeviceOut]


class MediaOut(BaseModel):
    id: int
    device_id: str
    seq: int = Field(description="the camera's sequence number of the frame")
    capture_id: str
    agent_event_id: str = Field(description="the burst the frame belongs to, as the camera named it")
    burst_index: int
    burst_size: int
    trigger: str
    captured_at: datetime
    utc_offset_min: int
    received_at: datetime
    sha256: str
    size: int
    width: int
    height: int
    process_state: str
    process_note: str | None
    event_id: int | None
    image_url: str


class MediaPage(BaseModel):
    items: list[MediaOut]
    next_before_id: int | None = Field(description="pass as before_id for the next (older) page")


class Sent(BaseModel):
    sent: dict[str, Any] = Field(description="the message as published to the camera")
