"""The numbers of each analysis, from grouped detections and the effort of the deployments. Pure
arithmetic over what ``detections.grouped`` and ``effort.effort`` return, so each one is checked by hand
on a small dataset (tests/integration/test_analysis_numbers.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from sqlalchemy import func, select, union_all
from sqlalchemy.orm import Session

from yaguar.storage.models import Device, Heartbeat, Media

from .detections import grouped
from .effort import CameraEffort, as_utc, effort
from .filters import AnalysisFilter
from .sqltime import utc_hour
from .sun import sun_times

DENSITY_BINS = 144  # ten-minute bins for the smoothed curve
KAPPA = 15.0  # concentration of the von Mises kernel (about 1 h 40 min wide): smooth, not blurred


@dataclass(frozen=True)
class SpeciesCount:
    device_id: str
    camera: str
    species: str
    events: int
    individuals: int


@dataclass(frozen=True)
class Abundance:
    """Detections per 100 camera-days; ``rai`` is None where there was no effort (no data)."""

    device_id: str | None  # None: all cameras together
    camera: str
    species: str
    events: int
    camera_days: float

    @property
    def rai(self) -> float | None:
        return 100.0 * self.events / self.camera_days if self.camera_days > 0 else None


@dataclass(frozen=True)
class Diel:
    species: str
    hourly: list[int]  # detections per local hour, 0..23
    density_x: list[float]  # hours, bin centres
    density_y: list[float]  # a density over the day (integrates to 1 over 24 h)
    day: int
    night: int
    unplaced: int  # detections of cameras with no known position: not split
    events: int


@dataclass(frozen=True)
class History:
    species: str
    days: list[date]
    rows: dict[
        str, list[int | None]
    ]  # per camera: 1 detected, 0 surveyed and not detected, None: not surveyed


@dataclass(frozen=True)
class Uptime:
    device_id: str
    camera: str
    camera_days: float  # deployed
    hours_heard: int  # hours with a heartbeat or a frame
    days_heard: int

    @property
    def fraction(self) -> float | None:
        expected = self.camera_days * 24
        return min(1.0, self.hours_heard / expected) if expected > 0 else None


def species_counts(db: Session, flt: AnalysisFilter) -> list[SpeciesCount]:
    names = {str(dev): name or dev for dev, name in db.execute(select(Device.id, Device.name))}
    rows = grouped(db, flt, "device", "species")
    return sorted(
        (SpeciesCount(dev, names.get(dev, dev), sp, int(n), int(ind or 0)) for dev, sp, n, ind in rows),
        key=lambda r: (r.camera, -r.events, r.species),
    )


def abundance(
    db: Session, flt: AnalysisFilter
) -> tuple[list[Abundance], list[Abundance], dict[str, CameraEffort]]:
    """Per camera and species, and per species over all cameras (events over the summed effort of every
    camera in the filter). Cameras with effort and no detection of a species count 0 for it."""
    cams = effort(db, flt)
    counts: dict[tuple[str, str], int] = {}
    for dev, sp, n, _ind in grouped(db, flt, "device", "species"):
        counts[(dev, sp)] = counts.get((dev, sp), 0) + int(n)
    species = sorted({sp for _dev, sp in counts} | ({flt.species} if flt.species else set()))
    per_camera = [
        Abundance(cam.device_id, cam.name, sp, counts.get((cam.device_id, sp), 0), cam.camera_days)
        for cam in cams.values()
        for sp in species
        if cam.camera_days > 0 or counts.get((cam.device_id, sp))
    ]
    # Over all cameras: only detections made with effort count, against the summed effort.
    deployed = {cam.device_id for cam in cams.values() if cam.camera_days > 0}
    total_days = sum(cam.camera_days for cam in cams.values())
    overall = [
        Abundance(
            None, "", sp, sum(n for (d, s), n in counts.items() if s == sp and d in deployed), total_days
        )
        for sp in species
    ]
    overall.sort(key=lambda a: -a.events)
    return per_camera, overall, cams


def top_species(db: Session, flt: AnalysisFilter) -> str | None:
    rows = grouped(db, flt, "species")
    return max(rows, key=lambda r: (r[1], r[0]))[0] if rows else None


def diel(db: Session, flt: AnalysisFilter, species: str) -> Diel:
    """Time of day of each detection (the camera's local clock), binned by hour, smoothed as a
    circular kernel density, and split into day and night by the sun at the camera."""
    cams = effort(db, flt)
    specific = AnalysisFilter(flt.start, flt.end, flt.camera, species)
    hourly = [0] * 24
    fine = np.zeros(DENSITY_BINS)
    day = night = unplaced = 0
    daylight: dict[tuple[str, date], tuple[int, int] | None] = {}  # sunrise, sunset per camera-day
    for dev, local, raw_minute, raw_n, _ind in grouped(db, specific, "device", "day", "minute"):
        n, minute = int(raw_n), int(raw_minute)
        hourly[minute // 60] += n
        fine[minute * DENSITY_BINS // 1440] += n
        if (dev, local) not in daylight:
            cam = cams.get(dev)
            where = cam.position_on(local) if cam is not None else None
            daylight[(dev, local)] = (
                sun_times(where[0], where[1], local, cam.offset_min) if where and cam else None
            )
        sun = daylight[(dev, local)]
        if sun is None:
            unplaced += n
        elif sun[0] <= minute < sun[1]:
            day += n
        else:
            night += n
    total = int(fine.sum())
    x = [(i + 0.5) * 24 / DENSITY_BINS for i in range(DENSITY_BINS)]
    return Diel(
        species,
        hourly,
        x,
        _circular_density(fine).tolist() if total else [0.0] * DENSITY_BINS,
        day,
        night,
        unplaced,
        total,
    )


def _circular_density(counts: np.ndarray) -> np.ndarray:
    """Von Mises kernel density on the 24 h circle, per hour (sums to 1 over the day)."""
    n = len(counts)
    angles = 2 * math.pi * np.arange(n) / n
    kernel = np.exp(KAPPA * np.cos(angles))
    kernel /= kernel.sum()
    smooth = np.real(np.fft.ifft(np.fft.fft(counts) * np.fft.fft(kernel)))
    return smooth / smooth.sum() * n / 24


def detection_history(db: Session, flt: AnalysisFilter, species: str) -> History:
    cams = effort(db, flt)
    specific = AnalysisFilter(flt.start, flt.end, flt.camera, species)
    seen = {(dev, day) for dev, day, _n, _ind in grouped(db, specific, "device", "day")}
    days = flt.days
    rows: dict[str, list[int | None]] = {}
    for cam in cams.values():
        if not cam.days and not any(dev == cam.device_id for dev, _d in seen):
            continue
        rows[cam.device_id] = [
            1 if (cam.device_id, d) in seen else (0 if d in cam.days else None) for d in days
        ]
    return History(species, days, rows)


def uptime(db: Session, flt: AnalysisFilter) -> list[Uptime]:
    """Hours in which each camera was heard from (a heartbeat or a frame) against its deployed time. One
    query per UTC offset among the cameras (usually one), counting distinct hours per camera."""
    cams = effort(db, flt)
    by_offset: dict[int, list[str]] = {}
    for cam in cams.values():
        by_offset.setdefault(cam.offset_min, []).append(cam.device_id)
    heard: dict[str, tuple[int, int]] = {}
    for offset, ids in by_offset.items():
        since = as_utc(flt.start, offset)
        until = as_utc(flt.end + timedelta(days=1), offset)
        parts = [
            select(table.device_id.label("device"), utc_hour(db, column).label("hour")).where(
                table.device_id.in_(ids), column >= since, column < until
            )
            for table, column in ((Heartbeat, Heartbeat.received_at), (Media, Media.captured_at))
        ]
        both = union_all(*parts).subquery()
        stmt = select(
            both.c.device,
            func.count(func.distinct(both.c.hour)),
            func.count(func.distinct(func.substr(both.c.hour, 1, 10))),
        ).group_by(both.c.device)
        heard.update({str(dev): (int(hours), int(days)) for dev, hours, days in db.execute(stmt)})
    return [
        Uptime(cam.device_id, cam.name, cam.camera_days, *heard.get(cam.device_id, (0, 0)))
        for cam in cams.values()
    ]
