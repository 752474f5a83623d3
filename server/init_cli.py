"""``yaguar-station init``: what a new station needs before it first runs, in one process, and safe to
run again: the models its config names fetched into the model folder and checked against their
manifests (files already there and right are kept), the database created or upgraded, and a first
dashboard admin with a random password, printed once (none when the database has users already).
``systemd/install-station.sh`` and the Docker image's entrypoint (``docker/entrypoint.sh``) run it."""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from sqlalchemy import func, select

from .config import StationConfig

MODELS_MISSING = 3  # exit status: the database and the admin are done, some model is not there


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = subparsers.add_parser(
        "init", help="before the first run: fetch and verify the models, create the database, add an admin"
    )
    init.add_argument(
        "--models",
        nargs="+",
        metavar="NAME",
        help="models to fetch (default: the config's detector and classifiers)",
    )
    init.add_argument(
        "--model-base-url",
        default=os.environ.get("YAGUAR_MODEL_BASE_URL") or None,
        help="a mirror: fetch model and labels files by name from here (default $YAGUAR_MODEL_BASE_URL, "
        "else each manifest's URL)",
    )
    init.add_argument("--admin", default="admin", help="the first admin's user name (default: admin)")
    init.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace, config: StationConfig) -> int:
    from yaguar.engine.analyser import resolve_model_dir

    from .cli import cmd_db_upgrade
    from .dashboard.users import UserError

    pipeline = config.pipeline
    names = args.models or ([pipeline.detector, *pipeline.classifiers] if pipeline.enabled else [])
    models_ok = True
    if names:
        model_dir = resolve_model_dir(pipeline)
        print(f"Models in {model_dir}: {' '.join(names)}", flush=True)
        models_ok = fetch_models(names, model_dir, args.model_base_url)
    cmd_db_upgrade(args, config)
    try:
        first_admin(config, args.admin)
    except UserError as exc:
        print(f"No first admin: {exc}.")
        return 2
    if not models_ok:
        print(
            "The models are not all there (above: which, and why). Put the files in the model folder, or "
            "fetch them from a mirror (YAGUAR_MODEL_BASE_URL); until then frames wait, kept, unanalysed."
        )
        return MODELS_MISSING
    return 0


def fetch_models(names: list[str], model_dir: Path, base_url: str | None) -> bool:
    """Each model and its labels file fetched and verified by ``yaguar models`` itself (from the mirror
    when one is given: files by name); False when any is missing or wrong."""
    from yaguar.engine.cli import main as yaguar
    from yaguar.engine.manifest import ManifestError, find_manifest

    folder = ["models", "--model-dir", str(model_dir)]
    ok = True
    for name in names:
        mirror: list[str] = []
        if base_url:
            try:
                manifest = find_manifest(name, [model_dir])
            except ManifestError as exc:
                print(f"{name}: {exc}")
                ok = False
                continue
            base = base_url.rstrip("/")
            mirror = ["--url", f"{base}/{manifest.file}", "--mirror", base]
        ok = yaguar([*folder, "fetch", name, "--no-progress", *mirror]) == 0 and ok
    return yaguar([*folder, "verify", *names]) == 0 and ok


def first_admin(config: StationConfig, name: str) -> None:
    from yaguar.storage import make_db_engine, make_session_factory

    from .dashboard.models import User
    from .dashboard.users import create_user

    with make_session_factory(make_db_engine(config.storage.database_url))() as db, db.begin():
        if db.scalar(select(func.count()).select_from(User)):
            print("There are dashboard users already: no new admin.")
            return
        password = secrets.token_urlsafe(12)
        create_user(db, name, password, "admin", None)
    print(f"First admin: {name}, password: {password}   (shown once: change it on the Users page)")
