"""``yaguar detect`` run as a user runs it: a real process."""

from __future__ import annotations

import sys
from pathlib import Path


def detect_command(card: Path, out: Path, models_dir: Path, *extra: str) -> list[str]:
    """The command line of ``yaguar detect CARD -o OUT`` with the shared models, no progress bar."""
    return [
        sys.executable,
        "-m",
        "yaguar.engine.cli",
        "detect",
        str(card),
        "-o",
        str(out),
        "--model-dir",
        str(models_dir),
        "--no-progress",
        *extra,
    ]
