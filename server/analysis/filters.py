"""The filters every analysis takes: a period of local days (inclusive), a camera, a species.

Days are the camera's local days: an event at 23:30 local time belongs to that day wherever the station
is. The period defaults to the 90 days up to today.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlencode

from yaguar.protocol import topics
from yaguar.server.dashboard.refusal import N_, RefusalError
from yaguar.storage.base import utcnow

DEFAULT_DAYS = 90
MAX_DAYS = 3 * 366


class AnalysisFilterError(RefusalError):
    """A filter that cannot be used; the message says why."""


@dataclass(frozen=True)
class AnalysisFilter:
    start: date
    end: date  # inclusive
    camera: str | None = None
    species: str | None = None

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @classmethod
    def from_query(cls, query: Mapping[str, str], today: date | None = None) -> AnalysisFilter:
        today = today or utcnow().date()
        end = _day(query.get("to"), "to") or today
        start = _day(query.get("from"), "from") or end - timedelta(days=DEFAULT_DAYS - 1)
        if end < start:
            raise AnalysisFilterError(N_("The period ends before it starts."))
        if (end - start).days + 1 > MAX_DAYS:
            raise AnalysisFilterError(N_("The period is longer than %(days)d days."), days=MAX_DAYS)
        camera = (query.get("camera") or "").strip() or None
        if camera is not None and not topics.is_valid_device_id(camera):
            raise AnalysisFilterError(N_("%(value)s is not a camera id."), value=camera[:40])
        species = (query.get("species") or "").strip() or None
        if species is not None and (
            len(species) > 120 or not all(c.isalpha() or c in " .-" for c in species)
        ):
            raise AnalysisFilterError(
                N_("the species must be a scientific name (letters, spaces, dots, hyphens)")
            )
        return cls(start, end, camera, species)

    def query_string(self, **extra: str) -> str:
        values = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        if self.camera:
            values["camera"] = self.camera
        if self.species:
            values["species"] = self.species
        values.update(extra)
        return urlencode(values)


def _day(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise AnalysisFilterError(N_("%(name)s must be a date like 2026-11-26"), name=name) from None
