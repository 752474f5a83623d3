"""The numbers of each analysis, from grouped detections and the effort of the deployments. Pure
arithmetic over what ``detections.grouped`` and ``effort.effort`` return, so each one is checked by hand
on a small dataset (tests/integration/test_analysis_numbers.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from yaguar.storage.models import Device

from .detections import grouped
from .effort import CameraEffort, as_utc, effort
from .filters import AnalysisFilter
from .heard import hours_heard
from .sqltime import day_number
from .sun import split_day_night

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
    columns = list(zip(*grouped(db, specific, "device", "clock"), strict=True)) or [(), (), (), ()]
    devices, clocks, events, _individuals = columns
    clock = np.array(clocks, dtype=np.int64)
    counts = np.array(events, dtype=np.int64)
    minutes = clock % 1440
    hourly = np.bincount(minutes // 60, weights=counts, minlength=24)
    fine = np.bincount(minutes * DENSITY_BINS // 1440, weights=counts, minlength=DENSITY_BINS)
    day, night, unplaced = split_day_night(cams, devices, clock // 1440, minutes, counts)
    total = int(counts.sum())
    x = [(i + 0.5) * 24 / DENSITY_BINS for i in range(DENSITY_BINS)]
    return Diel(
        species,
        [int(n) for n in hourly],
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
    """Per camera and local day of the period: 1 detected, 0 working without a detection, None not
    deployed. Filled as arrays: a year of 50 cameras is 18,000 cells."""
    cams = effort(db, flt)
    specific = AnalysisFilter(flt.start, flt.end, flt.camera, species)
    days, first = flt.days, day_number(flt.start)
    inside = range(len(days))  # column numbers; a negative one would count from the end
    detected: dict[str, list[int]] = {}
    for dev, number, _n, _ind in grouped(db, specific, "device", "day_number"):
        if int(number) - first in inside:
            detected.setdefault(str(dev), []).append(int(number) - first)
    rows: dict[str, list[int | None]] = {}
    for cam in cams.values():
        if not cam.days and cam.device_id not in detected:
            continue
        cells = np.full(len(days), -1, dtype=np.int8)
        cells[[i for i in (day.toordinal() - flt.start.toordinal() for day in cam.days) if i in inside]] = 0
        cells[detected.get(cam.device_id, [])] = 1
        rows[cam.device_id] = [None if cell < 0 else cell for cell in cells.tolist()]
    return History(species, days, rows)


def uptime(db: Session, flt: AnalysisFilter) -> list[Uptime]:
    """Hours in which each camera was heard from (a heartbeat or a frame) against its deployed time. One
    count per UTC offset among the cameras (usually one)."""
    cams = effort(db, flt)
    by_offset: dict[int, list[str]] = {}
    for cam in cams.values():
        by_offset.setdefault(cam.offset_min, []).append(cam.device_id)
    heard: dict[str, tuple[int, int]] = {}
    for offset, ids in by_offset.items():
        heard.update(
            hours_heard(db, ids, as_utc(flt.start, offset), as_utc(flt.end + timedelta(days=1), offset))
        )
    return [
        Uptime(cam.device_id, cam.name, cam.camera_days, *heard.get(cam.device_id, (0, 0)))
        for cam in cams.values()
    ]
