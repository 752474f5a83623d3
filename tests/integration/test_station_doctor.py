"""`yaguar-station doctor`, run as a person would: a station with no models, a dead broker and a
read-only media folder is told all three, each with what to do; a station with everything in place is
told so for each part."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.broker import Broker, free_port
from tests.support.config_files import write_station_config
from tests.support.tmpfs import tiny_tmpfs
from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine


def doctor(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yaguar.server.cli", "--config", str(config), "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write_config(folder: Path, port: int, media: Path, models: Path, **pipeline: object) -> Path:
    return write_station_config(
        folder,
        mqtt={"host": "127.0.0.1", "port": port},
        storage={"media_root": media},
        pipeline={"enabled": True, "model_dir": models, **pipeline},
    )


def finding(output: str, what: str) -> str:
    return next(line for line in output.splitlines() if line[5:].startswith(what))


def test_doctor_names_missing_models_dead_broker_and_read_only_media(tmp_path: Path) -> None:
    upgrade(make_db_engine(f"sqlite:///{tmp_path / 'station.db'}"))
    (tmp_path / "models").mkdir()
    with tiny_tmpfs(tmp_path / "media", "1m", read_only=True) as media:
        result = doctor(write_config(tmp_path, free_port(), media, tmp_path / "models"))
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert finding(out, "models").startswith("FIX")
    assert "yolox_nano@" in finding(out, "models") and "yaguar models fetch yolox_nano" in out
    assert finding(out, "broker").startswith("FIX") and "is Mosquitto running?" in finding(out, "broker")
    assert finding(out, "media folder").startswith("FIX")
    assert "cannot write in" in finding(out, "media folder") and "Read-only file system" in out
    assert finding(out, "database").startswith("OK")
    assert "To fix: models, broker, media folder" in out


def test_doctor_on_a_station_with_everything_in_place(
    broker: Broker, tmp_path: Path, models_dir: Path
) -> None:
    upgrade(make_db_engine(f"sqlite:///{tmp_path / 'station.db'}"))
    (tmp_path / "media").mkdir()
    # the classifiers need nothing but their files; keep the check to the detector the demo ships
    result = doctor(write_config(tmp_path, broker.port, tmp_path / "media", models_dir, classifiers=[]))
    out = result.stdout
    for what in ("models", "broker", "database", "media folder", "OpenCL"):
        assert finding(out, what).startswith("OK"), out
    assert "models present and verified" in finding(out, "models")
    # time sync depends on this machine; the doctor says one or the other, plainly
    assert "synchronised" in finding(out, "time sync")
