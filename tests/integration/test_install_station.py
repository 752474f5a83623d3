"""`systemd/install-station.sh` as a new user runs it, in a clean root folder (YAGUAR_ROOT: no apt, no
system user, no systemctl; everything else real): it installs the code in a fresh virtual environment,
fetches the default detector from a local HTTP server and verifies it into the model folder the
installed config names, creates the database and a first admin, and ends with a station that analyses
frames: the installed `yaguar-station run`, pointed at a broker, analyses frames from a camera."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.broker import Broker
from tests.support.field import SpoolAgent
from tests.support.file_server import serving
from tests.support.small_jpegs import small_real_jpegs
from yaguar.engine.manifest import find_manifest

SCRIPT = Path(__file__).resolve().parents[2] / "systemd" / "install-station.sh"


def analysed(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return conn.execute("SELECT count(*) FROM media WHERE process_state != 'pending'").fetchone()[0]


@pytest.mark.timeout(1500)  # a fresh virtual environment: minutes of pip, on a loaded 2-core machine
def test_install_station_in_a_clean_root_ends_with_a_working_station(
    tmp_path: Path, broker: Broker, models_dir: Path, images: Path
) -> None:
    root = tmp_path / "root"
    detector = find_manifest("yolox_nano")
    labels = detector.labels.file or ""
    with serving({detector.file: models_dir / detector.file, labels: models_dir / labels}) as server:
        env = {
            **os.environ,
            "YAGUAR_ROOT": str(root),
            "YAGUAR_MODELS": "yolox_nano",
            "YAGUAR_MODEL_BASE_URL": server.url.rstrip("/"),
            "YAGUAR_ADMIN": "ana",
        }
        result = subprocess.run(
            ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=1200, check=False
        )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert [name for name, _ in server.requests] == [detector.file, labels]  # from our server, once each

    config = root / "etc/yaguar/station.toml"
    model = root / "var/lib/yaguar/models" / detector.file
    assert hashlib.sha256(model.read_bytes()).hexdigest() == detector.sha256
    text = config.read_text()
    assert f'model_dir = "{root}/var/lib/yaguar/models"' in text and "classifiers = []" in text
    assert re.search(r"First admin: ana, password: \S{12,}", out)
    db = root / "var/lib/yaguar/station.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT username, role FROM users").fetchall() == [("ana", "admin")]
    assert "OK   models" in out and "OK   database" in out  # the doctor's last word

    # The installer's next step, as the guide says: point the config at the broker (here, the test's).
    text = text.replace('port = 8883\nusername = "station"', f"port = {broker.port}", 1)
    text = re.sub(r"\[mqtt\.tls\]\nca_file = .*\n", "", text).replace(
        'host = "0.0.0.0"\nport = 8080', "port = 0"
    )
    # (the test's broker lets anyone in, so there is no `devices add` step: the station takes any camera)
    text = text.replace("accept_unknown_devices = false", "accept_unknown_devices = true")
    config.write_text(text)
    station = subprocess.Popen(
        [str(root / "opt/yaguar/.venv/bin/yaguar-station"), "--config", str(config), "run"],
        stdout=(tmp_path / "station.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    camera = SpoolAgent(
        "cam-01", broker.host, broker.port, tmp_path / "spool", small_real_jpegs(images, 6), 3
    )
    try:
        camera.start()
        camera.capture_burst()
        camera.capture_burst()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and (not db.exists() or analysed(db) < 6):
            time.sleep(0.5)
        done = analysed(db)
    finally:
        camera.close()
        station.terminate()
        station.wait(30)
    assert done == 6, (tmp_path / "station.log").read_text()[-3000:]
