"""The README's demo command: a station, a private broker and simulated cameras; frames reach the API,
and the camera the demo stops raises a device alert, in the log and in the alerts API (SMS off)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.broker import free_port, wait_for_port

pytestmark = pytest.mark.processes  # one after another under xdist: tests/conftest.py


def test_demo_shows_frames_arriving_in_the_api(tmp_path: Path, images: Path) -> None:
    port = free_port()
    env = {**os.environ, "YAGUAR_DEMO_TOKEN": "demo-token"}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "yaguar.server.cli", "--log-level", "WARNING", "demo",
            "--folder", str(images / "classic"), "--agents", "2", "--rounds", "3", "--interval", "0.5",
            "--linger", "60", "--port", str(port), "--workdir", str(tmp_path / "demo"),
            "--stop-camera-after", "1", "--offline-after", "3",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=60)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/media?limit=100", headers={"Authorization": "Bearer demo-token"}
        )
        items: list[dict] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(items) < 12:
            with urllib.request.urlopen(request, timeout=10) as response:
                items = json.load(response)["items"]
            time.sleep(0.5)
        assert len(items) == 12  # bursts of 3: camera 1 in 3 rounds, camera 2 in 1 (then stopped)
        assert {m["device_id"] for m in items} == {"demo-cam-01", "demo-cam-02"}
        alerts = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/alerts", headers={"Authorization": "Bearer demo-token"}
        )
        offline: list[dict] = []
        deadline = time.monotonic() + 60
        # until the alert has gone out: it is listed as soon as it is made, first as "sending"
        while time.monotonic() < deadline and not (offline and all(a["state"] == "sent" for a in offline)):
            with urllib.request.urlopen(alerts, timeout=10) as response:
                offline = [a for a in json.load(response)["items"] if a["rule"] == "device-offline"]
            time.sleep(0.5)
        assert [(a["device_id"], a["state"]) for a in offline] == [("demo-cam-02", "sent")]
        assert [d["channel"] for d in offline[0]["deliveries"]] == ["log"]
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert "dashboard: http://127.0.0.1:" in output
    assert "log in as admin, password" in output
    assert "simulated cameras replaying 6 images" in output
    assert "Stopped demo-cam-02" in output
    assert "Yaguar: camera Sendero 02 silent since" in output, "the device alert is in the log"
