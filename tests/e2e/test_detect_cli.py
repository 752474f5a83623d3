"""``yaguar detect`` as a user runs it: a real process over a copied SD card dump with bad files mixed in."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.engine import encode, read_bgr
from tests.support.jpegs import with_dimensions
from yaguar.engine.batch_output import validate_batch_output


def _yaguar(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yaguar.engine.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_detect_over_an_sd_card_dump(tmp_path: Path, images: Path, models_dir: Path) -> None:
    card = tmp_path / "DCIM"
    (card / "100RECNX").mkdir(parents=True)
    (card / "101RECNX").mkdir()
    for name in ("IMAG1065_cougar.JPG", "B013_IMG_0005_empty.jpeg", "error_img.JPG"):
        shutil.copy(images / "camera-trap" / name, card / "100RECNX" / name)
    shutil.copy(images / "classic" / "dog.jpg", card / "101RECNX" / "IMG_0001.JPG")
    (card / "101RECNX" / "IMG_0002.JPG").write_bytes(
        encode(read_bgr(images / "classic" / "eagle.jpg"), ".tiff")
    )
    (card / "101RECNX" / "IMG_0003.JPG").write_bytes(
        with_dimensions((images / "classic" / "dog.jpg").read_bytes(), 65000, 65000)
    )
    (card / "101RECNX" / "notes.txt").write_text("not an image")

    out = tmp_path / "results.json"
    run = _yaguar(
        "detect", str(card), "-o", str(out), "--model-dir", str(models_dir), "--no-progress", cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "6 images, 3 could not be read" in run.stdout

    data = json.loads(out.read_text())
    assert validate_batch_output(data) == []
    assert data["info"]["format_version"] == "1.6" and data["info"]["detector"] == "yolox_nano@0.1.1"
    by_file = {image["file"]: image for image in data["images"]}
    assert set(by_file) == {
        "100RECNX/IMAG1065_cougar.JPG",
        "100RECNX/B013_IMG_0005_empty.jpeg",
        "100RECNX/error_img.JPG",
        "101RECNX/IMG_0001.JPG",
        "101RECNX/IMG_0002.JPG",
        "101RECNX/IMG_0003.JPG",
    }
    error_entry = by_file["100RECNX/error_img.JPG"]
    assert {k: error_entry[k] for k in ("file", "failure", "detections")} == {
        "file": "100RECNX/error_img.JPG",
        "failure": "the image is empty (0 bytes)",
        "detections": None,
    }
    assert "TIFF" in by_file["101RECNX/IMG_0002.JPG"]["failure"]
    assert "65000x65000" in by_file["101RECNX/IMG_0003.JPG"]["failure"]
    assert by_file["100RECNX/B013_IMG_0005_empty.jpeg"]["detections"] == []
    cougar = by_file["100RECNX/IMAG1065_cougar.JPG"]["detections"]
    assert cougar and cougar[0]["category"] == "1"
    species = {data["classification_categories"][c[0]] for d in cougar for c in d.get("classifications", [])}
    assert species == {"Puma concolor"}
    dog = by_file["101RECNX/IMG_0001.JPG"]["detections"]
    assert {data["detection_categories"][d["category"]] for d in dog} == {"animal", "vehicle"}

    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert {r["file"] for r in rows} == set(by_file)
    assert any(r["species"] == "Puma concolor" and r["common_name"] == "puma" for r in rows)
    assert [r["category"] for r in rows if r["file"] == "100RECNX/B013_IMG_0005_empty.jpeg"] == ["blank"]
    assert all(r["failure"] for r in rows if r["file"] in ("100RECNX/error_img.JPG", "101RECNX/IMG_0002.JPG"))


def test_detect_with_a_bad_manifest_says_why_in_one_line(tmp_path: Path) -> None:
    manifest = tmp_path / "mine.toml"
    manifest.write_text('name = "mine"\nversion = "1"\nkind = "detector"\n')
    (tmp_path / "a.jpg").write_bytes(b"")
    run = _yaguar(
        "detect", str(tmp_path), "--detector", str(manifest), "-o", str(tmp_path / "o.json"), cwd=tmp_path
    )
    assert run.returncode == 2
    line = run.stdout.strip()
    assert line.startswith("yaguar detect: manifest mine.toml is invalid") and "\n" not in line
