"""Each analysis as one table of plain values: the page shows it, the CSV download writes it, and the
API returns it, so the three always agree. Column titles are message ids, translated where shown."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from yaguar.server.dashboard.refusal import N_

from .numbers import Abundance, Diel, History, SpeciesCount, Uptime

Cell = str | int | float | None


@dataclass(frozen=True)
class Table:
    name: str
    columns: list[str]
    rows: list[list[Cell]]

    def csv(self) -> str:
        """CSV with machine-readable column names and empty cells for "no data"."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([_key(c) for c in self.columns])
        writer.writerows(["" if v is None else v for v in row] for row in self.rows)
        return out.getvalue()

    def records(self) -> list[dict[str, Cell]]:
        keys = [_key(c) for c in self.columns]
        return [dict(zip(keys, row, strict=True)) for row in self.rows]


def _key(title: str) -> str:
    return title.lower().replace(" ", "_").replace("-", "_").replace("(", "").replace(")", "")


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def species_table(rows: list[SpeciesCount]) -> Table:
    return Table(
        "species_counts",
        [N_("camera"), N_("species"), N_("detections"), N_("individuals")],
        [[r.device_id, r.species, r.events, r.individuals] for r in rows],
    )


def abundance_table(per_camera: list[Abundance], overall: list[Abundance]) -> Table:
    rows: list[list[Cell]] = [
        ["", a.species, a.events, round(a.camera_days, 3), _round(a.rai)] for a in overall
    ]
    rows += [[a.device_id, a.species, a.events, round(a.camera_days, 3), _round(a.rai)] for a in per_camera]
    return Table(
        "relative_abundance",
        [N_("camera"), N_("species"), N_("detections"), N_("camera-days"), N_("RAI")],
        rows,
    )


def diel_table(diel: Diel) -> Table:
    total = diel.events
    return Table(
        "diel_activity",
        [N_("hour"), N_("detections"), N_("share")],
        [[f"{h:02d}:00", n, _round(n / total if total else None, 4)] for h, n in enumerate(diel.hourly)],
    )


def history_table(history: History) -> Table:
    return Table(
        "detection_history",
        [N_("camera"), *[d.isoformat() for d in history.days]],
        [[cam, *values] for cam, values in history.rows.items()],
    )


def uptime_table(rows: list[Uptime]) -> Table:
    return Table(
        "camera_uptime",
        [N_("camera"), N_("camera-days"), N_("hours heard"), N_("days heard"), N_("uptime")],
        [
            [u.device_id, round(u.camera_days, 3), u.hours_heard, u.days_heard, _round(u.fraction, 4)]
            for u in rows
        ],
    )
