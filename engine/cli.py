"""The ``yaguar`` command: ``yaguar models ...`` and ``yaguar detect ...``."""

from __future__ import annotations

import argparse
import sys

from yaguar.logs import setup_logging

from . import data_cli, detect_cli, models_cli
from .training import cli as train_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yaguar", description="Yaguar camera-trap analysis tools")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING or ERROR")
    sub = parser.add_subparsers(dest="command", required=True)
    models_cli.add_commands(sub)
    detect_cli.add_commands(sub)
    train_cli.add_commands(sub)
    data_cli.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
