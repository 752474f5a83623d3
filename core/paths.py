"""Where shared test data and models live: ``../shared/data`` beside the checkout, or a configured path."""

from __future__ import annotations

import os
from pathlib import Path

ENV_DATA_DIR = "YAGUAR_DATA_DIR"


def shared_data_dir() -> Path | None:
    """Return the shared data folder (models, images), or None when it is not present.

    ``YAGUAR_DATA_DIR`` wins; otherwise ``../shared/data`` relative to the repository checkout,
    then relative to the current working directory.
    """
    configured = os.environ.get(ENV_DATA_DIR)
    if configured:
        path = Path(configured).expanduser()
        return path if path.is_dir() else None
    repo_root = Path(__file__).resolve().parent.parent
    for candidate in (repo_root.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return None
