"""``yaguar data inat``: research-grade iNaturalist photos of a list of species in a place, as a training
folder (one sub-folder per species) with an attribution CSV.

pyinaturalist does the API work (parameters, response conversion) through its ClientSession, which
keeps to iNaturalist's published limits (1 request a second, 60 a minute, 10,000 a day); photos come
from the open-data bucket through a rate-limited session of their own. Observations are paged by id
(``id_above``), so a run can stop at any point and the next one carries on from the last photo saved;
photos already saved are never fetched twice. Photos with no URL, or under a licence that was not
asked for, are skipped and counted, never guessed at.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import requests
from pyinaturalist import ClientSession
from pyinaturalist.constants import API_V1
from pyinaturalist.v1 import get_observations
from requests.adapters import HTTPAdapter
from requests_ratelimiter import LimiterSession

from yaguar.durable import atomic_write

log = logging.getLogger(__name__)

COLOMBIA = 7827  # iNaturalist place id
DEFAULT_LICENCES = ("cc0", "cc-by", "cc-by-nc")
KNOWN_LICENCES = frozenset(
    {"cc0", "cc-by", "cc-by-nc", "cc-by-sa", "cc-by-nd", "cc-by-nc-sa", "cc-by-nc-nd", "pd"}
)
PER_PAGE = 50
ATTEMPTS = 5  # per request, on a dropped link or a 429
COLUMNS = [
    "file", "species", "observation_id", "photo_id", "observer", "observed_on", "place", "licence",
    "attribution", "observation_url", "photo_url",
]  # fmt: skip


class InatError(RuntimeError):
    """The download cannot go on (the API keeps failing); the message says why in one line."""


@dataclass
class InatOptions:
    species: list[str]  # scientific names
    out_dir: Path
    place_id: int = COLOMBIA
    licences: tuple[str, ...] = DEFAULT_LICENCES
    per_species: int = 100
    per_page: int = PER_PAGE
    api_url: str = API_V1  # a local fake in tests
    per_second: float = 1.0  # iNaturalist's published limit
    burst: int = 5
    photos_per_second: float = 1.0
    progress: bool = True


@dataclass
class InatSummary:
    saved: Counter[str] = field(default_factory=Counter)  # species -> photos saved (this run and earlier)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> count
    retries: int = 0


class _Session(ClientSession):
    """pyinaturalist's session, pointed at ``api_url`` instead of the public API (a mirror or a test)."""

    def __init__(self, api_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_url = api_url.rstrip("/")
        self.mount("http://", HTTPAdapter(max_retries=self.retries))

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if url.startswith(API_V1):
            url = self.api_url + url[len(API_V1) :]
        return super().request(method, url, *args, **kwargs)


def medium_url(photo: dict[str, Any]) -> str | None:
    """The medium-size photo URL (the API gives the square thumbnail's)."""
    url = photo.get("url")
    if not url:
        return None
    return str(url).replace("/square.", "/medium.")


class InatDownload:
    def __init__(self, options: InatOptions, sleep: Callable[[float], None] = time.sleep) -> None:
        self.options, self.sleep = options, sleep
        work = options.out_dir / ".yaguar-inat"
        work.mkdir(parents=True, exist_ok=True)
        self.api = _Session(
            options.api_url,
            cache_file=str(work / "api-cache.sqlite"),
            cache_control=False,
            expire_after=0,  # pages are not reused: paging by id resumes without them
            ratelimit_path=str(work / "ratelimit.sqlite"),
            per_second=options.per_second,
            burst=options.burst,
            user_agent="yaguar-camera-traps",
        )
        self.photos = LimiterSession(per_second=options.photos_per_second, burst=1)
        self.summary = InatSummary()
        self.csv_path = options.out_dir / "attribution.csv"
        self.done = self._already_saved()
        self.state_path = work / "state.json"  # species -> id of the last observation fully handled
        self.state: dict[str, int] = (
            json.loads(self.state_path.read_text()) if self.state_path.is_file() else {}
        )

    def _already_saved(self) -> set[int]:
        if not self.csv_path.is_file():
            return set()
        with open(self.csv_path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            self.summary.saved[row["species"]] += 1
        return {int(row["photo_id"]) for row in rows}

    def run(self, on_photo: Callable[[], None] = lambda: None) -> InatSummary:
        for species in self.options.species:
            for _ in self._species(species):
                on_photo()
        return self.summary

    def _species(self, species: str) -> Iterator[Path]:
        folder = self.options.out_dir / species
        last_id = self.state.get(species, 0)
        while self.summary.saved[species] < self.options.per_species:
            page = self._page(species, last_id)
            results = page.get("results") or []
            if not results:
                return
            for observation in results:
                last_id = max(last_id, int(observation["id"]))
                for photo in observation.get("photos") or []:
                    if self.summary.saved[species] >= self.options.per_species:
                        return
                    saved = self._photo(species, folder, observation, photo)
                    if saved is not None:
                        yield saved
            self.state[species] = last_id  # the whole page is handled: a rerun starts after it
            atomic_write(self.state_path, json.dumps(self.state).encode(), fsync=False)

    def _page(self, species: str, last_id: int) -> dict[str, Any]:
        params = {
            "taxon_name": species,
            "place_id": self.options.place_id,
            "quality_grade": "research",
            "photos": True,
            "photo_license": [x.upper() for x in self.options.licences],
            "order_by": "id",
            "order": "asc",
            "id_above": last_id,
            "per_page": self.options.per_page,
        }
        return self._retrying(lambda: get_observations(session=self.api, **params), f"{species} page")

    def _retrying(self, call: Callable[[], Any], what: str) -> Any:
        """A 429 waits as long as Retry-After says (or backs off); a dropped link is tried again."""
        for attempt in range(ATTEMPTS):
            try:
                return call()
            except requests.HTTPError as exc:
                response = exc.response
                if response is None or response.status_code != 429:
                    raise InatError(f"iNaturalist answered {exc} for {what}") from None
                wait = float(response.headers.get("Retry-After") or 2**attempt)
                log.warning("iNaturalist asks to slow down (429); waiting %.0f s", wait)
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                wait = 2**attempt
                log.warning(
                    "link to iNaturalist dropped (%s); trying again in %.0f s", type(exc).__name__, wait
                )
            self.summary.retries += 1
            self.sleep(min(wait, 60.0))
        raise InatError(f"iNaturalist kept failing for {what} after {ATTEMPTS} tries; run again to resume")

    def _photo(
        self, species: str, folder: Path, observation: dict[str, Any], photo: dict[str, Any]
    ) -> Path | None:
        photo_id = photo.get("id")
        if photo_id is None or int(photo_id) in self.done:
            return None
        licence = (photo.get("license_code") or "").lower()
        url = medium_url(photo)
        if url is None:
            self._skip("no_photo_url", f"photo {photo_id}: no URL in the answer")
            return None
        if licence not in KNOWN_LICENCES:
            self._skip("unknown_licence", f"photo {photo_id}: licence {licence or 'none'} is unknown")
            return None
        if licence not in self.options.licences:
            self._skip("licence_not_wanted", f"photo {photo_id}: licence {licence} was not asked for")
            return None
        try:
            response = self._retrying(lambda: self.photos.get(url, timeout=30), f"photo {photo_id}")
            response.raise_for_status()
        except (InatError, requests.HTTPError) as exc:
            self._skip("download_failed", f"photo {photo_id}: {exc}")
            return None
        if response.content[:2] != b"\xff\xd8":
            self._skip("not_jpeg", f"photo {photo_id}: the answer is not a JPEG")
            return None
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"inat-{photo_id}.jpg"
        atomic_write(path, response.content, fsync=False)
        self._attribute(path, species, observation, photo, licence, url)
        self.done.add(int(photo_id))
        self.summary.saved[species] += 1
        return path

    def _skip(self, reason: str, message: str) -> None:
        self.summary.skipped[reason] += 1
        log.info("iNaturalist: skipped %s", message)

    def _attribute(
        self, path: Path, species: str, obs: dict[str, Any], photo: dict[str, Any], licence: str, url: str
    ) -> None:
        """One CSV row per photo, appended after the photo is saved: the CSV is the record of what is done."""
        user = obs.get("user") or {}
        observed = obs.get("observed_on")
        row = {
            "file": str(path.relative_to(self.options.out_dir)),
            "species": species,
            "observation_id": obs.get("id"),
            "photo_id": photo.get("id"),
            "observer": user.get("name") or user.get("login") or "",
            "observed_on": observed.isoformat() if isinstance(observed, date) else str(observed or ""),
            "place": obs.get("place_guess") or "",
            "licence": licence,
            "attribution": photo.get("attribution") or "",
            "observation_url": obs.get("uri") or f"https://www.inaturalist.org/observations/{obs.get('id')}",
            "photo_url": url,
        }
        new = not self.csv_path.exists()
        with open(self.csv_path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
