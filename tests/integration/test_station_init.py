"""`yaguar-station init`, which install-station.sh and the Docker image's entrypoint run (the entrypoint at
every start): the models fetched from a mirror on loopback and verified, the database, a first admin.
Run again it fetches nothing and adds no admin; with no models to be had it says which and why, still
makes the database and the admin, and exits 3 (the entrypoint then starts the station all the same)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from tests.support.config_files import write_station_config
from tests.support.file_server import serving
from yaguar.engine.manifest import find_manifest
from yaguar.server.cli import main
from yaguar.server.init_cli import MODELS_MISSING


def write_config(folder: Path, models: Path) -> Path:
    return write_station_config(
        folder, pipeline={"enabled": True, "model_dir": models, "detector": "yolox_nano", "classifiers": []}
    )


def test_init_fetches_verifies_and_is_safe_to_repeat(
    tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    detector = find_manifest("yolox_nano")
    labels = detector.labels.file or ""
    config = write_config(tmp_path, tmp_path / "models")
    with serving({detector.file: models_dir / detector.file, labels: models_dir / labels}) as mirror:
        init = ["--config", str(config), "init", "--model-base-url", mirror.url, "--admin", "ana"]
        assert main(init) == 0
        first = capsys.readouterr().out
        assert main(init) == 0
        again = capsys.readouterr().out
    assert [name for name, _ in mirror.requests] == [detector.file, labels]  # once each, not again
    model = tmp_path / "models" / detector.file
    assert hashlib.sha256(model.read_bytes()).hexdigest() == detector.sha256
    assert "First admin: ana, password: " in first
    assert "There are dashboard users already: no new admin." in again and "First admin" not in again
    with sqlite3.connect(tmp_path / "station.db") as conn:
        assert conn.execute("SELECT username, role FROM users").fetchall() == [("ana", "admin")]


def test_init_without_models_says_which_and_still_makes_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, tmp_path / "models")
    with serving({}) as empty_mirror:  # the mirror has no models: every request is a 404
        status = main(["--config", str(config), "init", "--model-base-url", empty_mirror.url])
    out = capsys.readouterr().out
    detector = find_manifest("yolox_nano")
    assert status == MODELS_MISSING, out
    assert f"{detector.ident}: MISSING {tmp_path / 'models' / detector.file}" in out
    assert "The models are not all there" in out and "First admin: admin, password: " in out
    with sqlite3.connect(tmp_path / "station.db") as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)
