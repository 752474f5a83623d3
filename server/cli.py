"""``yaguar-station``: run the station, check its config, upgrade its database, and more.

Other parts add subcommands: a module in ``COMMAND_MODULES`` defines ``add_commands(subparsers)``; each
subcommand sets ``func(args, config) -> int``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import signal
import sys
import threading
from pathlib import Path

from yaguar.config import ConfigError

from .config import StationConfig, load_config

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/yaguar/station.toml")
COMMAND_MODULES: list[str] = [
    "yaguar.server.dashboard.commands",
    "yaguar.server.demo",
    "yaguar.server.devices_cli",
    "yaguar.server.alerts_cli",
    "yaguar.server.classifiers_cli",
    "yaguar.server.import_cli",
    "yaguar.server.doctor",
    "yaguar.server.sites_cli",
    "yaguar.server.init_cli",
]


def cmd_run(args: argparse.Namespace, config: StationConfig) -> int:
    from .health import serve
    from .station import Station

    worker = args.command == "worker"
    station = Station(config, http=not worker, ingest=not worker).start()
    # Everything loaded at start-up (libraries, models, config) lives as long as the process: keep it out
    # of the garbage collector's scans, which otherwise revisit it while frames stream in.
    gc.freeze()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if worker:
        print(
            "Pipeline worker running: it analyses the database's pending frames (Ctrl+C stops it)", flush=True
        )
    else:
        print(f"Station running. Dashboard and API: {station.http_url}  (Ctrl+C stops it)", flush=True)
    serve(station, stop)  # READY, then WATCHDOG while healthy, until SIGTERM
    print("Stopping the station...", flush=True)
    station.stop()
    return 0


def cmd_check_config(args: argparse.Namespace, config: StationConfig) -> int:
    source = args.config or "(defaults)"
    print(f"Config {source} is valid.")
    print(f"  broker: {config.mqtt.host}:{config.mqtt.port}, database: {config.storage.database_url}")
    print(f"  media: {config.storage.media_root}, web: http://{config.http.host}:{config.http.port}")
    if not config.http.api_tokens:
        print("  note: no API tokens are set (YAGUAR_API_TOKENS): the REST API will refuse every request")
    return 0


def cmd_db_upgrade(args: argparse.Namespace, config: StationConfig) -> int:
    from yaguar.server.schema import upgrade
    from yaguar.storage import make_db_engine

    engine = make_db_engine(config.storage.database_url)
    upgrade(engine)
    print(f"Database {engine.url.render_as_string(hide_password=True)} is up to date.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yaguar-station", description="The Yaguar station")
    parser.add_argument("--config", type=Path, help=f"station config file (TOML); default {DEFAULT_CONFIG}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the station").set_defaults(func=cmd_run)
    sub.add_parser(
        "worker", help="only analyse frames (and send alerts), beside stations on the same PostgreSQL"
    ).set_defaults(func=cmd_run)
    sub.add_parser("check-config", help="validate the config file and say what it sets").set_defaults(
        func=cmd_check_config
    )
    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="create or upgrade the database schema").set_defaults(func=cmd_db_upgrade)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from yaguar.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    path = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc.report("yaguar-station"), file=sys.stderr)
        return 2
    return args.func(args, config)


if __name__ == "__main__":
    sys.exit(main())
