"""``yaguar-station classifiers show | use NAME``: the species classifiers the station runs, the trained
ones it could run, and switching to one while the station runs (it is picked up at the next poll)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from yaguar.engine.backends.base import BackendError
from yaguar.engine.manifest import ManifestError
from yaguar.engine.training.dataset import TrainingError

from .classifier_choice import current_classifiers, propose, record, side_by_side, trained_models
from .config import StationConfig
from .retrain import RetrainError, export_reviews, retrain


def _sessions(config: StationConfig) -> sessionmaker[Session]:
    from yaguar.server.schema import upgrade
    from yaguar.storage import make_db_engine, make_session_factory

    engine = make_db_engine(config.storage.database_url)
    upgrade(engine)
    return make_session_factory(engine)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classifiers", help="species classifiers: show them, switch to a trained one"
    )
    sub = parser.add_subparsers(dest="classifiers_command", required=True)
    sub.add_parser("show", help="the classifiers in use and the trained ones available").set_defaults(
        func=cmd_show
    )
    use = sub.add_parser(
        "use", help="run a trained classifier from now on, if its validation is not worse than the current"
    )
    use.add_argument("name", help="the trained model's manifest name")
    use.add_argument(
        "--with",
        dest="also",
        action="append",
        default=[],
        metavar="NAME",
        help="another classifier to run beside it (e.g. mobilenet_v2_inat_bird_quant for birds)",
    )
    use.add_argument("--by", default="cli", help="who decides (kept with the choice)")
    use.set_defaults(func=cmd_use)
    export = sub.add_parser(
        "export-reviews", help="the reviewed boxes as a training folder (one sub-folder per species)"
    )
    export.add_argument("--out", type=Path, required=True)
    export.set_defaults(func=cmd_export_reviews)
    again = sub.add_parser("retrain", help="train a new classifier on the reviews (and other folders)")
    again.add_argument("--name", required=True, help="base name; the UTC time is added")
    again.add_argument("--folder", type=Path, action="append", default=[], help="another training folder")
    again.add_argument("--use", action="store_true", help="switch to it if it is not worse than the current")
    again.add_argument("--by", default="cli", help="who asks (kept with the choice)")
    again.set_defaults(func=cmd_retrain)


def cmd_show(args: argparse.Namespace, config: StationConfig) -> int:
    with _sessions(config)() as session:
        names = current_classifiers(session, config.pipeline)
    print("in use / en uso: " + (", ".join(names) or "none"))
    models = trained_models(config.pipeline)
    if not models:
        print("no trained classifiers in the manifest folder (yaguar train classifier ... --out FOLDER)")
        return 0
    print(f"{'trained model':36} {'species':>7} {'validation':>10} {'held back':>9}  trained")
    for m in models:
        t = m.training
        assert t is not None  # trained_models keeps only these
        mark = "*" if m.name in names else " "
        print(
            f"{mark}{m.ident:35} {len(t.taxa):7d} {t.validation_accuracy:10.1%} {t.validation_images:9d}  "
            f"{t.trained_at}"
        )
    return 0


def cmd_use(args: argparse.Namespace, config: StationConfig) -> int:
    with _sessions(config).begin() as session:
        try:
            decision, names = propose(session, config.pipeline, args.name, args.also)
        except ManifestError as exc:
            print(f"yaguar-station classifiers: {exc}")
            return 2
        for line in side_by_side(decision.current, decision.new):
            print(line)
        if not decision.allowed:
            print(f"not switched / no se cambió: {decision.reason}")
            return 1
        record(session, names, args.by, decision.reason)
    print(f"switched / cambiado: {decision.reason}; now running {', '.join(names)}")
    print("a running station picks this up at its next poll, without a restart")
    return 0


def cmd_export_reviews(args: argparse.Namespace, config: StationConfig) -> int:
    export = export_reviews(_sessions(config), config, args.out)
    print(f"{sum(export.crops.values())} reviewed boxes of {len(export.crops)} species in {args.out}")
    for species, n in sorted(export.crops.items()):
        print(f"  {species:32} {n:5d}")
    if export.skipped:
        print("left out / no usadas: " + ", ".join(f"{n} {r}" for r, n in sorted(export.skipped.items())))
    return 0


def cmd_retrain(args: argparse.Namespace, config: StationConfig) -> int:
    try:
        done = retrain(_sessions(config), config, args.name, args.folder, args.by, args.use, progress=True)
    except (RetrainError, TrainingError, ManifestError, BackendError) as exc:
        print(f"yaguar-station classifiers retrain: {exc}")
        return 2
    validation = done.result.trained.validation
    print(f"{done.result.manifest.ident}: validation {validation.accuracy:.1%} of {validation.images}")
    for line in side_by_side(done.decision.current, done.decision.new):
        print(line)
    if done.switched:
        print(f"switched / cambiado: {done.decision.reason}")
    elif args.use:
        print(f"not switched / no se cambió: {done.decision.reason}")
    return 0 if done.switched or not args.use else 1
