"""What station tests need before they start: the shared data and a Mosquitto binary (skip otherwise)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.broker import MOSQUITTO
from yaguar.paths import shared_data_dir


def station_data() -> Path:
    """The shared data folder; skips the test when it or Mosquitto is missing."""
    data = shared_data_dir()
    if data is None:
        pytest.skip("shared data (../shared/data or YAGUAR_DATA_DIR) is not present")
    if not shutil.which("mosquitto") and not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed")
    return data
