"""Every ``yaguar`` and ``yaguar-station`` command (and the station itself) starts without loading
scikit-learn: it takes seconds to import and only training needs it."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from yaguar.engine.cli import main  # noqa: F401  (imports every command module of ``yaguar``)
from yaguar.server.cli import build_parser
import yaguar.server.dashboard.pages_classifiers  # noqa: F401
build_parser()
print(sorted(m for m in ("sklearn", "scipy", "tensorflow", "tf2onnx") if m in sys.modules))
"""


def test_the_command_lines_and_the_dashboard_do_not_import_the_trainer() -> None:
    run = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


MISSING = """
import sys
sys.modules["sklearn"] = None  # as without the train extra: importing it raises ImportError
sys.modules["pyinaturalist"] = None
from yaguar.engine.cli import main
print(main(["train", "classifier", "photos", "--name", "x", "--out", "out"]))
print(main(["data", "inat", "--out", "out"]))
"""


def test_without_the_training_extra_train_and_data_say_what_to_install() -> None:
    run = subprocess.run(
        [sys.executable, "-c", MISSING], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert (
        lines[0]
        == "yaguar train: sklearn is not installed: install Yaguar's training extra (pip install 'yaguar[train]')"
    )
    assert (
        lines[1] == "2"
        and lines[2].startswith("yaguar data inat: pyinaturalist is not installed")
        and lines[3] == "2"
    )
