"""`dev.sh test` runs pytest on two workers and relies on `tests/conftest.py` keeping each module's tests
on one worker (they share module fixtures: one station per module). The grouping reaches pytest-xdist
through a side channel that has silently broken before (pytest 9.2 ignores it: pytest-xdist issue 1386,
hence the pin in pyproject.toml; and our hook ran after xdist's until it was marked tryfirst), so this
runs a real two-worker session and checks where each test ran."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

MODULE = """
import os
import pytest


@pytest.mark.parametrize("i", range(4))
def test_where(i):
    with open("ran.txt", "a") as f:
        f.write(f"{__name__} {os.environ['PYTEST_XDIST_WORKER']}\\n")
"""


def test_each_module_runs_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_collection_modifyitems  # noqa\n"
    )
    for name in ("test_one", "test_two", "test_three"):
        (tmp_path / f"{name}.py").write_text(MODULE)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        check=False,  # the output explains a failure better than the exception
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    runs = [line.split() for line in (tmp_path / "ran.txt").read_text().splitlines()]
    assert len(runs) == 12
    workers: dict[str, set[str]] = {}
    for module, worker in runs:
        workers.setdefault(module, set()).add(worker)
    assert all(len(found) == 1 for found in workers.values()), workers
