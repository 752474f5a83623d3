"""``yaguar-station classifiers show | use NAME``: the species classifiers the station runs, the trained
ones it could run, and switching to one while the station runs (it is picked up at the next poll)."""

from __future__ import annotations

import argparse

from sqlalchemy.orm import Session, sessionmaker

from yaguar.engine.manifest import ManifestError

from .classifier_choice import current_classifiers, propose, record, side_by_side, trained_models
from .config import StationConfig


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
