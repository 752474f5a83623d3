"""``yaguar-station user add`` and ``yaguar-station export`` against a real SQLite file and real frames."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.config_files import write_station_config
from tests.support.dashboard_web import seed
from yaguar.server.cli import main
from yaguar.server.dashboard.auth import verify_password
from yaguar.server.dashboard.models import User
from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    export = {"project_title": "Chaco test", "latitude": -22.0, "longitude": -60.0}
    return write_station_config(tmp_path, dashboard={"export": export})


def _users(tmp_path: Path) -> list[User]:
    engine = make_db_engine(f"sqlite:///{tmp_path / 'station.db'}")
    with make_session_factory(engine)() as db:
        users = list(db.scalars(select(User)))
    engine.dispose()
    return users


def test_user_add_creates_the_first_admin_with_a_hashed_password(config_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a long secret phrase\n"))
    assert (
        main(["--config", str(config_file), "user", "add", "ana", "--role", "admin", "--password-stdin"]) == 0
    )
    assert "User ana added with role admin." in capsys.readouterr().out
    [user] = _users(tmp_path)
    assert (user.username, user.role) == ("ana", "admin")
    assert user.password_hash.startswith("$argon2id$") and "a long secret" not in user.password_hash
    assert verify_password(user.password_hash, "a long secret phrase")

    monkeypatch.setattr("sys.stdin", io.StringIO("a long secret phrase\n"))
    assert main(["--config", str(config_file), "user", "add", "ana", "--password-stdin"]) == 1
    assert "already exists" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["--config", str(config_file), "user", "add", "bob", "--password-stdin"]) == 1
    assert "at least 10 characters" in capsys.readouterr().err
    assert len(_users(tmp_path)) == 1


def test_export_writes_each_format(config_file, tmp_path, shared_data, capsys):
    engine = make_db_engine(f"sqlite:///{tmp_path / 'station.db'}")
    upgrade(engine)
    seed(make_session_factory(engine), tmp_path / "media", shared_data, events=4)
    engine.dispose()

    out = tmp_path / "camtrap"
    assert main(["--config", str(config_file), "export", "--format", "camtrap-dp", "--out", str(out)]) == 0
    assert "2 deployments, 4 media" in capsys.readouterr().out
    descriptor = json.loads((out / "datapackage.json").read_text())
    assert descriptor["project"]["title"] == "Chaco test"
    assert {r["name"] for r in descriptor["resources"]} == {"deployments", "media", "observations"}

    md = tmp_path / "md.json"
    args = [
        "--config",
        str(config_file),
        "export",
        "--format",
        "megadetector",
        "--out",
        str(md),
        "--camera",
        "cam-02",
    ]
    assert main(args) == 0
    assert len(json.loads(md.read_text())["images"]) == 2

    table = tmp_path / "events.csv"
    args = [
        "--config",
        str(config_file),
        "export",
        "--format",
        "csv",
        "--out",
        str(table),
        "--from",
        "2026-11-21",
    ]
    assert main(args) == 0
    assert list(csv.DictReader(table.open())) == []  # every seeded event is on 2026-11-20
    assert "0 events" in capsys.readouterr().out
