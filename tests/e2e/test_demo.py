"""The README's demo command: a station, a private broker and simulated cameras; frames reach the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.broker import free_port, wait_for_port


def test_demo_shows_frames_arriving_in_the_api(tmp_path: Path, images: Path) -> None:
    port = free_port()
    env = {**os.environ, "YAGUAR_DEMO_TOKEN": "demo-token"}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "yaguar.server.cli", "--log-level", "WARNING", "demo",
            "--folder", str(images / "classic"), "--agents", "2", "--rounds", "2", "--interval", "0.5",
            "--linger", "60", "--port", str(port), "--workdir", str(tmp_path / "demo"),
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
        assert len(items) == 12  # 2 cameras x 2 rounds x bursts of 3
        assert {m["device_id"] for m in items} == {"demo-cam-01", "demo-cam-02"}
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert "dashboard: http://127.0.0.1:" in output
    assert "log in as admin, password" in output
    assert "simulated cameras replaying 6 images" in output
