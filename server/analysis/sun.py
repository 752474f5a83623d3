"""Day or night at a camera: sunrise and sunset for its position and local day, computed with astral
(not a fixed 06:00-18:00, which is hours off near the poles and at the edges of a time zone)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import numpy as np
from astral import Observer
from astral.sun import elevation, sunrise, sunset

from .effort import CameraEffort

MINUTES = 1440
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@lru_cache(maxsize=65_536)
def daylight(lat: float, lon: float, day: date, offset_min: int) -> tuple[int, int]:
    """Sunrise and sunset as local minutes of ``day`` (0..1440). Polar day is (0, 1440), polar night
    (0, 0)."""
    observer = Observer(latitude=lat, longitude=lon)
    tz = timezone(timedelta(minutes=offset_min))
    try:
        rise = sunrise(observer, day, tzinfo=tz)
        fall = sunset(observer, day, tzinfo=tz)
    except ValueError:  # the sun stays up, or down, all day
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
        return (0, MINUTES) if elevation(observer, noon) > 0 else (0, 0)
    return _minute_of(rise, day), _minute_of(fall, day)


def _minute_of(when: datetime, day: date) -> int:
    minutes = (when.date() - day).days * MINUTES + when.hour * 60 + when.minute
    return max(0, min(MINUTES, minutes))


def sun_times(lat: float, lon: float, day: date, offset_min: int) -> tuple[int, int]:
    """Sunrise and sunset (local minutes) at a camera. Positions rounded to 0.1 degree (11 km) move them
    by well under a minute at camera latitudes, and let the cameras of one station share each day's
    computation."""
    return daylight(round(lat, 1), round(lon, 1), day, offset_min)


def split_day_night(
    cams: Mapping[str, CameraEffort],
    devices: Sequence[str],
    days: np.ndarray,
    minutes: np.ndarray,
    counts: np.ndarray,
) -> tuple[int, int, int]:
    """``(day, night, unplaced)`` detections, row ``i`` being ``counts[i]`` detections by camera
    ``devices[i]`` on local day number ``days[i]`` (since 1970) at local minute ``minutes[i]``.

    A year has tens of thousands of rows but few places: cameras that stood in one place all along
    share the sun of their rounded place, computed once per day; only a camera that moved looks up its
    position day by day. The comparisons run over whole arrays."""
    names, camera_of_row = np.unique(np.asarray(devices, dtype=str), return_inverse=True)
    cameras_at: dict[Place | str | None, list[int]] = {}
    for number, name in enumerate(names.tolist()):
        cameras_at.setdefault(_place(cams.get(name)), []).append(number)
    day = night = unplaced = 0
    for key, cameras in cameras_at.items():
        index = np.flatnonzero(np.isin(camera_of_row, cameras))
        if key is None:
            unplaced += int(counts[index].sum())
            continue
        unique, inverse = np.unique(days[index], return_inverse=True)
        suns = np.array(_suns(key, cams, unique)).reshape(-1, 2)
        rise, fall, at, n = suns[inverse, 0], suns[inverse, 1], minutes[index], counts[index]
        known = rise >= 0
        lit = known & (rise <= at) & (at < fall)
        day += int(n[lit].sum())
        night += int(n[known & ~lit].sum())
        unplaced += int(n[~known].sum())
    return day, night, unplaced


Place = tuple[float, float, int]  # rounded latitude, longitude and UTC offset
UNKNOWN = (-1, -1)  # no position on that day: neither day nor night


def _place(cam: CameraEffort | None) -> Place | str | None:
    """Where a camera stood all along, rounded as ``sun_times`` rounds; its id if it moved; None if it
    has no position."""
    if cam is None:
        return None
    spots = {(lat, lon) for _start, _end, lat, lon in cam.positions} or ({cam.home} if cam.home else set())
    if len(spots) > 1:
        return cam.device_id
    if not spots:
        return None
    lat, lon = spots.pop()
    return round(lat, 1), round(lon, 1), cam.offset_min


def _suns(key: Place | str, cams: Mapping[str, CameraEffort], numbers: np.ndarray) -> list[tuple[int, int]]:
    """Sunrise and sunset on each local day (numbers since 1970) at a place, or at a camera that moved."""
    local = [date.fromordinal(EPOCH_ORDINAL + number) for number in numbers.tolist()]
    if isinstance(key, tuple):
        return [daylight(key[0], key[1], day, key[2]) for day in local]
    cam = cams[key]
    return [
        sun_times(where[0], where[1], day, cam.offset_min) if where else UNKNOWN
        for day, where in zip(local, cam.positions_on(numbers), strict=True)
    ]
