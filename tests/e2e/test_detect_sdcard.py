"""``yaguar detect`` over an SD card with real EXIF: capture times, sequences, and kill -9 then --resume."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.detect import detect_command
from tests.support.exif import copy_with_exif
from yaguar.engine.batch_output import validate_batch_output


def _card(tmp_path: Path, shared_data: Path) -> Path:
    card = tmp_path / "DCIM"
    heron = card / "RIO01"
    heron.mkdir(parents=True)
    for frame in sorted((shared_data / "camtrap-dp-1.0.2" / "example" / "media").glob("*.JPG")):
        shutil.copy(frame, heron / frame.name)  # real Reconyx EXIF, no offset, about a second apart
    jaguars = card / "CAM02"
    jaguars.mkdir()
    for hour, frame in enumerate(sorted((shared_data / "images" / "jaguar").glob("*.jpg"))):
        suffix = {0: ".png", 1: ".heic"}.get(hour, ".jpg")
        copy_with_exif(
            frame, jaguars / f"IMG_{hour:04d}{suffix}", f"2005:10:07 {hour + 1:02d}:00:00", "-05:00", 2
        )
    return card


def _detect(card: Path, out: Path, models_dir: Path, *extra: str) -> list[str]:
    zones = ["--camera-timezone", "RIO01=America/Bogota"]
    options = ["--motion", "--no-classify", *zones, "--checkpoint-every", "1"]
    # Times, sequences and resuming are tested here, not the closer look: off unless asked (cheaper).
    closer = [] if "--closer" in extra else ["--closer", "0x0"]
    return detect_command(card, out, models_dir, *options, *closer, *extra)


def _entries(out: Path) -> list[dict[str, object]]:
    data = json.loads(out.read_text())
    assert validate_batch_output(data) == []
    return data["images"]


@pytest.mark.slow
def test_capture_times_sequences_and_resume_after_kill(
    tmp_path: Path, shared_data: Path, models_dir: Path
) -> None:
    card = _card(tmp_path, shared_data)
    whole = tmp_path / "whole.json"
    run = subprocess.run(
        _detect(card, whole, models_dir), capture_output=True, text=True, timeout=240, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    entries = _entries(whole)
    assert len(entries) == 21 and not any(e.get("failure") for e in entries)
    by_file = {e["file"]: e for e in entries}
    first_heron = by_file["RIO01/20210531082538-RCNX0031.JPG"]
    assert first_heron["datetime"] == "2021-04-11T20:43:09-05:00"
    assert first_heron["datetime_source"] == "camera_timezone"
    assert {e["seq_id"] for f, e in by_file.items() if f.startswith("RIO01/")} == {"RIO01#0001"}
    assert first_heron["seq_num_frames"] == 10 and first_heron["frame_num"] == 0
    png = by_file["CAM02/IMG_0000.png"]
    assert (png["datetime"], png["datetime_source"]) == ("2005-10-07T01:00:00-05:00", "exif_offset")
    assert by_file["CAM02/IMG_0001.heic"]["seq_id"] == "CAM02#0002"  # an hour apart: one sequence each
    assert not (tmp_path / "whole.json.checkpoint").exists()

    # The same card again, killed with SIGKILL once a checkpoint is on disk, then resumed.
    out = tmp_path / "resumed.json"
    checkpoint = tmp_path / "resumed.json.checkpoint"
    child = subprocess.Popen(_detect(card, out, models_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while not checkpoint.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=30)
    assert checkpoint.exists() and not out.exists(), "the run ended before it could be killed mid-way"
    done = json.loads(checkpoint.read_text())["done"]
    assert 1 <= len(done) < 12

    refused = subprocess.run(
        _detect(card, out, models_dir, "--resume", "--sequence-gap", "5", "--closer", "832x640"),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert refused.returncode == 2 and "made with other settings (gap_s, look)" in refused.stdout

    resumed = subprocess.run(
        [*_detect(card, out, models_dir), "--resume"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _entries(out) == entries
    assert list(csv.DictReader(out.with_suffix(".csv").open())) == list(
        csv.DictReader(whole.with_suffix(".csv").open())
    )
    assert not checkpoint.exists()
