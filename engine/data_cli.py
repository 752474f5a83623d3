"""``yaguar data inat``: iNaturalist research-grade photos of the region's species, as a training folder."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

from yaguar.taxonomy import REGIONS

from .training.dataset import missing_extra
from .training.taxa import NotATaxonError, resolve

log = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="training data: iNaturalist photos")
    sub = parser.add_subparsers(dest="data_command", required=True)
    inat = sub.add_parser("inat", help="research-grade iNaturalist photos, one folder per species")
    inat.add_argument("--out", type=Path, required=True, help="the training folder to fill (resumable)")
    inat.add_argument(
        "--taxa", nargs="+", default=None, help="species (scientific or common names); default: the region's"
    )
    inat.add_argument("--region", default="colombia", help="species list used when --taxa is not given")
    inat.add_argument("--place", type=int, default=7827, help="iNaturalist place id (Colombia: 7827)")
    inat.add_argument(
        "--licence",
        action="append",
        default=None,
        help="photo licences to keep (default: cc0, cc-by, cc-by-nc)",
    )
    inat.add_argument("--per-species", type=int, default=100, help="at most this many photos per species")
    inat.add_argument("--api-url", default=None, help="another iNaturalist API endpoint (a mirror)")
    inat.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run_data)


def run_data(args: argparse.Namespace) -> int:
    try:
        from .inat import DEFAULT_LICENCES, InatDownload, InatError, InatOptions
    except ImportError as exc:
        print(f"yaguar data inat: {missing_extra(exc)}")
        return 2

    try:
        names = args.taxa or sorted(REGIONS[args.region])
        species = [resolve(n).scientific for n in names]
    except (NotATaxonError, KeyError) as exc:
        print(f"yaguar data inat: {exc}")
        return 2
    options = InatOptions(
        species=species,
        out_dir=args.out,
        place_id=args.place,
        licences=tuple(x.lower() for x in args.licence) if args.licence else DEFAULT_LICENCES,
        per_species=args.per_species,
        progress=not args.no_progress,
    )
    if args.api_url:
        options.api_url = args.api_url
    download = InatDownload(options)
    already = sum(download.summary.saved.values())
    total = len(species) * options.per_species
    with tqdm(total=total, initial=min(already, total), unit="photo", disable=not options.progress) as bar:
        try:
            summary = download.run(lambda: bar.update(1))
        except InatError as exc:
            log.error("%s", exc)
            print(f"yaguar data inat: {exc}")
            return 1
    print(f"{sum(summary.saved.values())} photos of {len(summary.saved)} species in {args.out}")
    for name in species:
        print(f"  {name:32} {summary.saved[name]:5d}")
    if summary.skipped:
        print("skipped / descartadas: " + ", ".join(f"{n} {r}" for r, n in sorted(summary.skipped.items())))
    print(f"attribution / atribución: {args.out / 'attribution.csv'}")
    return 0
