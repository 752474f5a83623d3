"""``yaguar-station user add`` and ``yaguar-station export``."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine

from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory

from ..config import StationConfig
from ..exports import camtrap_dp, csv_export, megadetector
from ..exports.records import ExportScope
from .models import ROLES
from .refusal import N_
from .users import UserError, create_user

log = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = subparsers.add_parser("user", help="manage dashboard users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create a user (the first one should be an admin)")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, default="viewer")
    add.add_argument("--language", choices=("es", "en"), default=None)
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=user_add)

    export = subparsers.add_parser("export", help="write Camtrap DP, MegaDetector batch output or CSV")
    export.add_argument("--format", choices=("camtrap-dp", "megadetector", "csv"), default="camtrap-dp")
    export.add_argument(
        "--out",
        type=Path,
        required=True,
        help="a folder for camtrap-dp, a file for megadetector (.json) and csv",
    )
    export.add_argument(
        "--from", dest="day_from", type=date.fromisoformat, help="first day, YYYY-MM-DD (UTC)"
    )
    export.add_argument("--to", dest="day_to", type=date.fromisoformat, help="last day, YYYY-MM-DD (UTC)")
    export.add_argument("--camera", help="only this camera (device id)")
    export.set_defaults(func=export_command)


def _engine(config: StationConfig) -> Engine:
    storage = config.storage
    engine = make_db_engine(storage.database_url, storage.sqlite_synchronous, storage.busy_timeout_ms)
    upgrade(engine)
    return engine


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise UserError(N_("the two passwords differ"))
    return first


def user_add(args: argparse.Namespace, config: StationConfig) -> int:
    try:
        password = _read_password(args.password_stdin)
        engine = _engine(config)
        with make_session_factory(engine)() as db, db.begin():
            create_user(db, args.username, password, args.role, args.language)
    except UserError as exc:
        print(f"User not added: {exc}.", file=sys.stderr)
        return 1
    print(f"User {args.username} added with role {args.role}.")
    return 0


def export_command(args: argparse.Namespace, config: StationConfig) -> int:
    scope = ExportScope(
        since=datetime.combine(args.day_from, time(), UTC) if args.day_from else None,
        until=datetime.combine(args.day_to + timedelta(days=1), time(), UTC) if args.day_to else None,
        device=args.camera,
    )
    engine = _engine(config)
    out: Path = args.out
    # A spinner on the terminal's error stream: a big station's export takes a while, the summary follows.
    status = Console(stderr=True).status(f"Writing the {args.format} export...")
    with status, make_session_factory(engine)() as db:
        if args.format == "camtrap-dp":
            summary = camtrap_dp.write_package(db, out, config.dashboard.export, scope)
            print(
                f"Camtrap DP 1.0.2 written to {out}: {summary.deployments} deployments, "
                f"{summary.media} media, {summary.observations} observations."
            )
            if summary.cameras_without_position:
                print(
                    "Left out (no position; set [dashboard.export] latitude/longitude or the camera's): "
                    + ", ".join(summary.cameras_without_position)
                )
        elif args.format == "megadetector":
            result = megadetector.build(
                db, scope, threshold=megadetector.detection_threshold(config.pipeline)
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=1))
            print(f"MegaDetector batch output 1.6 written to {out}: {len(result['images'])} images.")
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("w", newline="", encoding="utf-8") as handle:
                rows = csv_export.write_events_csv(db, handle, scope)
            print(f"CSV written to {out}: {rows} events.")
    return 0
