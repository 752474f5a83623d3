"""Fixtures shared by every test: a real Mosquitto, the shared data folder, a temp SQLite database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import MOSQUITTO, Broker
from tests.support.prerequisites import require_data


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_data()


@pytest.fixture(scope="session")
def images(shared_data: Path) -> Path:
    return shared_data / "images"


@pytest.fixture(scope="session")
def models_dir(shared_data: Path) -> Path:
    return shared_data / "models"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if not shutil.which("mosquitto") and not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (the README's test command installs it)")
    with Broker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'station.db'}"
