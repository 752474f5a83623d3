"""A wheel carries every file the package reads at run time.

Docker images and `install-station.sh` install a wheel, not the editable checkout: a folder without an
``__init__.py`` (model manifests, migrations, templates, translations) only gets into it when
pyproject.toml's package data names it. Built from the tracked files, as a user's install would be.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"core": "yaguar", "agent": "yaguar/agent", "protocol": "yaguar/protocol",
           "server": "yaguar/server", "engine": "yaguar/engine", "kernels": "yaguar/kernels",
           "alerts": "yaguar/alerts"}  # fmt: skip


@pytest.mark.timeout(180)
def test_the_wheel_holds_every_tracked_package_file(tmp_path: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", *FOLDERS], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    src = tmp_path / "src"
    for name in [*tracked, "pyproject.toml", "setup.py", "README.md"]:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(src)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("yaguar-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        FOLDERS[name.split("/", 1)[0]] + "/" + name.split("/", 1)[1]
        for name in tracked
        if "/" in name and not name.endswith((".py", ".pyc", "README.md", ".gitignore"))
    }
    assert sorted(wanted - inside) == []
    assert "yaguar/engine/manifests/yolox_nano.toml" in inside
    assert "yaguar/server/migrations/versions/0001_core.py" in inside
