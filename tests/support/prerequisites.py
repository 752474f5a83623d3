"""What tests need before they start: the shared data and a Mosquitto binary (skip otherwise).

With ``YAGUAR_REQUIRE_DATA=1`` (CI sets it) a test that needs the shared data fails instead of
skipping when the data is missing: a CI run must never pass by leaving the real-data tests out.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support.broker import MOSQUITTO
from yaguar.paths import shared_data_dir

REQUIRE_DATA = "YAGUAR_REQUIRE_DATA"


def missing_data(reason: str) -> NoReturn:
    """Skip the test, or fail it when ``YAGUAR_REQUIRE_DATA=1`` says the data must be there."""
    if os.environ.get(REQUIRE_DATA) == "1":
        pytest.fail(f"{reason} ({REQUIRE_DATA}=1: the shared data must be present)", pytrace=False)
    pytest.skip(reason)


def require_data(*parts: str) -> Path:
    """The shared data folder, or a file or folder inside it; skips (or fails, see above) when missing."""
    data = shared_data_dir()
    if data is None:
        missing_data("shared data (../shared/data or YAGUAR_DATA_DIR) is not present")
    target = data.joinpath(*parts)
    if not target.exists():
        missing_data(f"{'/'.join(parts)} is not in the shared data folder {data}")
    return target


def station_data() -> Path:
    """The shared data folder; skips the test when it or Mosquitto is missing."""
    data = require_data()
    if not shutil.which("mosquitto") and not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed")
    return data
