"""Day or night at a camera: sunrise and sunset for its position and local day, computed with astral
(not a fixed 06:00-18:00, which is hours off near the poles and at the edges of a time zone)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

from astral import Observer
from astral.sun import elevation, sunrise, sunset

MINUTES = 1440


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
