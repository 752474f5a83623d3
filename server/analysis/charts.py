"""Charts drawn on the station with matplotlib, as SVG text put inline in the page: nothing is fetched
from elsewhere, and the figures print and scale cleanly. Each chart is a ``Figure`` of its own (no
pyplot state), so pages can draw them from several threads."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence

import matplotlib as mpl
from markupsafe import Markup
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from .numbers import Abundance, Diel, History

mpl.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable, in the page's font
mpl.rcParams["svg.hashsalt"] = "yaguar"  # stable ids, so one chart gives the same SVG twice
INK, ACCENT, NIGHT, MUTED = "#1d2a1f", "#2f6b3a", "#1d2a1f22", "#5f6b60"
_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)

Gettext = Callable[[str], str]


def _svg(fig: Figure, label: str) -> Markup:
    buffer = io.StringIO()
    FigureCanvasSVG(fig).print_svg(buffer)
    svg = _PROLOGUE.sub("", buffer.getvalue(), count=1)
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{Markup.escape(label)}" ', 1)
    return Markup(svg)  # noqa: S704 - matplotlib's own output; the label is escaped above


def _figure(width: float, height: float, left: float = 0.09) -> Figure:
    # Fixed margins: the automatic layout engines cost more than the drawing itself.
    fig = Figure(figsize=(width, height), dpi=96)
    fig.subplots_adjust(
        left=left, right=0.98, bottom=min(0.45, 0.55 / height), top=1 - min(0.3, 0.35 / height)
    )
    fig.patch.set_alpha(0)
    return fig


def diel_chart(diel: Diel, _: Gettext, title: str) -> Markup:
    """Detections per local hour (bars) and the smoothed density over the day (line)."""
    fig = _figure(7.5, 3.0)
    ax = fig.add_subplot()
    total = max(diel.events, 1)
    # One outline for the 24 hours, not 24 bars: each artist costs several ms to draw.
    ax.stairs([n / total for n in diel.hourly], range(25), fill=True, color=ACCENT, alpha=0.55,
              label=_("detections per hour"))  # fmt: skip
    ax.plot(diel.density_x, diel.density_y, color=INK, linewidth=1.6, label=_("density"))
    ax.set_xlim(0, 24)
    # Few ticks (every 6 h, about four shares): each tick is five artists to lay out and draw.
    ax.set_xticks(range(0, 25, 6), [f"{h:02d}:00" for h in range(0, 25, 6)])
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.set_xlabel(_("local time at the camera"))
    ax.set_ylabel(_("share of detections"))
    ax.set_title(title, fontsize=11)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, title)


def abundance_chart(overall: Sequence[Abundance], names: Callable[[str], str], _: Gettext) -> Markup:
    """Relative abundance index per species, over all cameras (species without effort are left out)."""
    shown = [a for a in overall if a.rai is not None][:20]
    fig = _figure(7.5, 0.8 + 0.32 * max(len(shown), 1), left=0.28)
    ax = fig.add_subplot()
    labels = [names(a.species) for a in reversed(shown)]
    ax.barh(labels, [a.rai or 0.0 for a in reversed(shown)], color=ACCENT)
    ax.set_xlabel(_("detections per 100 camera-days"))
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, _("Relative abundance index"))


def history_chart(history: History, _: Gettext) -> Markup:
    """One row per camera, one column per day: detected, surveyed without detection, not surveyed."""
    cams = list(history.rows)
    grid = [[-1 if v is None else v for v in history.rows[c]] for c in cams]
    fig = _figure(7.5, 0.9 + 0.28 * max(len(cams), 1), left=0.14)
    ax = fig.add_subplot()
    if grid:
        ax.imshow(
            grid,
            aspect="auto",
            interpolation="none",  # the cells as they are, no resampling: the SVG scales them
            cmap=ListedColormap(["#ffffff", "#d6dcd3", ACCENT]),
            vmin=-1,
            vmax=1,
        )
    # Camera names as plain text beside their rows, not as axis ticks: a tick is five artists, and
    # fifty of them cost more than the rest of the chart.
    ax.set_yticks([])
    beside = blended_transform_factory(ax.transAxes, ax.transData)
    for row, cam in enumerate(cams):
        ax.text(-0.01, row, cam, transform=beside, ha="right", va="center", fontsize=9)
    step = max(1, len(history.days) // 10)
    ax.set_xticks(range(0, len(history.days), step), [d.isoformat()[5:] for d in history.days[::step]])
    ax.set_xlabel(_("day (green: detected, grey: camera working, white: not deployed)"))
    return _svg(fig, _("Detection history"))
