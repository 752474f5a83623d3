"""Fixtures shared by every test: a real Mosquitto, the shared data folder, a temp SQLite database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import MOSQUITTO, Broker
from tests.support.postgres import postgres_cluster
from tests.support.prerequisites import require_data

# Tests that start several processes and wait on timing (kill -9, cut links, several workers, browsers,
# containers): the faults folder, and end-to-end modules marked `processes`. Under `pytest -n 2` (dev.sh
# test) they run one after another on one worker, beside the quicker tests, never two at once on this
# kind of 2-core machine.
SERIAL_FOLDERS = {"faults"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests for pytest-xdist's `--dist loadgroup`: a module's tests stay together (they share
    module fixtures), and the process-heavy ones form one group."""
    for item in items:
        folder = item.path.parent.name
        serial = folder in SERIAL_FOLDERS or item.get_closest_marker("processes") is not None
        item.add_marker(pytest.mark.xdist_group("serial" if serial else f"{folder}/{item.path.name}"))


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


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster of the test's own."""
    pytest.importorskip("psycopg")
    with postgres_cluster() as url:
        yield url
