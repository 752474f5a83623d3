"""The analysis pages (es/en): species counts, relative abundance, diel activity, detection history and
uptime, each filtered by period, camera and species, each with its CSV (``?format=csv``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aiohttp import web
from markupsafe import Markup
from sqlalchemy.orm import Session

from yaguar.server.dashboard.core import dashboard_of
from yaguar.server.dashboard.guard import requires
from yaguar.server.dashboard.pages_feed import cached_choices
from yaguar.server.dashboard.refusal import N_
from yaguar.server.dashboard.species import common_name

from . import charts, numbers, tables
from .cache import ResultCache, database_of
from .filters import AnalysisFilter, AnalysisFilterError
from .tables import Table

PAGES = {
    "species": N_("Species counts"),
    "abundance": N_("Relative abundance"),
    "activity": N_("Activity"),
    "history": N_("Detection history"),
    "uptime": N_("Camera uptime"),
}


@dataclass
class Result:
    table: Table
    chart: Markup | None = None
    species: str | None = None  # the species shown, for pages about one species
    summary: dict[str, Any] | None = None


async def _filter(request: web.Request) -> AnalysisFilter:
    try:
        return AnalysisFilter.from_query(request.query)
    except AnalysisFilterError as exc:
        raise await dashboard_of(request).refuse(request, exc, "analysis filter") from None


_charts: dict[tuple[Any, ...], Markup] = {}
CHARTS_KEPT = 64


def _chart(key: tuple[Any, ...], draw: Callable[[], Markup]) -> Markup:
    """Drawing costs more than counting, and the numbers change slowly: each chart is drawn once per set
    of numbers (``key`` holds them all), and the last 64 are kept."""
    chart = _charts.get(key)
    if chart is None:
        chart = draw()
        if len(_charts) >= CHARTS_KEPT:
            _charts.pop(next(iter(_charts)))
        _charts[key] = chart
    return chart


@lru_cache(maxsize=4)
def _gettext(lang: str) -> Callable[[str], str]:
    from yaguar.server.dashboard.i18n import load_translations

    return load_translations(lang).gettext


TOP_KEPT_S = 60.0
_tops: dict[tuple[str, AnalysisFilter], tuple[float, str | None]] = {}


def _top_species(db: Session, flt: AnalysisFilter) -> str | None:
    """The species the activity and history pages show when none is chosen: the most detected one,
    looked for once a minute (it hardly ever changes, and finding it reads every detection)."""
    kept = _tops.get((database_of(db), flt))
    if kept is not None and time.monotonic() - kept[0] < TOP_KEPT_S:
        return kept[1]
    top = numbers.top_species(db, flt)
    if len(_tops) >= 32:
        _tops.clear()
    _tops[(database_of(db), flt)] = (time.monotonic(), top)
    return top


_results = ResultCache()


def compute(db: Session, page: str, flt: AnalysisFilter, lang: str, with_chart: bool) -> Result:
    """The numbers (and chart) of one analysis page; also what the API returns. Kept while the data
    is unchanged (``cache``)."""
    return _results.get_or_compute(
        db, (page, flt, lang, with_chart), lambda: _compute(db, page, flt, lang, with_chart)
    )


def _compute(db: Session, page: str, flt: AnalysisFilter, lang: str, with_chart: bool) -> Result:
    _ = _gettext(lang)

    def name(sci: str) -> str:
        return common_name(sci, lang) or sci

    if page == "species":
        return Result(tables.species_table(numbers.species_counts(db, flt)))
    if page == "abundance":
        per_camera, overall, cams = numbers.abundance(db, flt)
        days = sum(c.camera_days for c in cams.values())
        chart = None
        if with_chart and days > 0:
            key: tuple[object, ...] = (
                "abundance",
                lang,
                tuple((a.species, a.events, a.camera_days) for a in overall),
            )
            chart = _chart(key, lambda: charts.abundance_chart(overall, name, _))
        return Result(tables.abundance_table(per_camera, overall), chart, summary={"camera_days": days})
    if page == "uptime":
        return Result(tables.uptime_table(numbers.uptime(db, flt)))
    species = flt.species or _top_species(db, flt)
    if species is None:
        empty = numbers.Diel("", [0] * 24, [], [], 0, 0, 0, 0)
        if page == "activity":
            return Result(tables.diel_table(empty))
        return Result(tables.history_table(numbers.History("", flt.days, {})))
    if page == "activity":
        diel = numbers.diel(db, flt, species)
        chart = None
        if with_chart and diel.events:
            key = ("diel", lang, species, tuple(diel.hourly), tuple(diel.density_y))
            chart = _chart(key, lambda: charts.diel_chart(diel, _, name(species)))
        summary = {"day": diel.day, "night": diel.night, "unplaced": diel.unplaced, "events": diel.events}
        return Result(tables.diel_table(diel), chart, species, summary)
    history = numbers.detection_history(db, flt, species)
    chart = None
    if with_chart and history.rows:
        key = (
            "history",
            lang,
            species,
            tuple(history.days),
            tuple((c, tuple(v)) for c, v in history.rows.items()),
        )
        chart = _chart(key, lambda: charts.history_chart(history, _))
    return Result(tables.history_table(history), chart, species)


def _page_handler(page: str) -> Callable[[web.Request], Any]:
    @requires("viewer")
    async def handler(request: web.Request) -> web.StreamResponse:
        dash = dashboard_of(request)
        flt = await _filter(request)
        lang = await dash.language(request)
        as_csv = request.query.get("format") == "csv"
        result = await dash.read(lambda db: compute(db, page, flt, lang, not as_csv))
        if as_csv:
            name = f"{result.table.name}_{flt.start}_{flt.end}.csv"
            return web.Response(
                text=result.table.csv(),
                content_type="text/csv",
                charset="utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return await dash.render(
            request,
            "analysis.html",
            page=page,
            pages=PAGES,
            flt=flt,
            result=result,
            choices=await cached_choices(request),
            csv_url=f"/analysis/{page}?{flt.query_string(format='csv')}",
        )

    handler.__name__ = f"analysis_{page}"
    return handler


@requires("viewer")
async def index(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/analysis/species")


def routes() -> list[web.RouteDef]:
    return [web.get("/analysis", index)] + [
        web.get(f"/analysis/{page}", _page_handler(page)) for page in PAGES
    ]
