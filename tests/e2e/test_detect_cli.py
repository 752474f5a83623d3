"""``yaguar detect`` as a user runs it: a real process over a copied SD card dump with bad files mixed in."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.support.engine import encode, read_bgr
from tests.support.jpegs import truncated, with_dimensions
from yaguar.engine.batch_output import validate_batch_output
from yaguar.engine.cli import build_parser
from yaguar.engine.detect_cli import run_detect
from yaguar.engine.postprocess import iou_xywh


def _yaguar(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yaguar.engine.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _detect_card(
    card: Path, models_dir: Path, summary: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run ``yaguar detect`` over a card as a user would; (the run, the valid MegaDetector output).
    The results go into a folder that does not exist yet: it is made."""
    out = card.parent / "results" / "results.json"
    run = _yaguar(
        "detect", str(card), "-o", str(out), "--model-dir", str(models_dir), "--no-progress", cwd=card.parent
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert summary in run.stdout
    data = json.loads(out.read_text())
    assert validate_batch_output(data) == []
    return run, data


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

    out = tmp_path / "results" / "results.json"
    run, data = _detect_card(card, models_dir, "6 images, 2 could not be read")
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
    # a TIFF named .JPG is read as the TIFF it is, as MegaDetector (Pillow) reads it, and the log says so
    assert by_file["101RECNX/IMG_0002.JPG"]["detections"]
    assert "101RECNX/IMG_0002.JPG: named .JPG but holds a TIFF; read as one" in run.stderr
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
    assert all(r["failure"] for r in rows if r["file"] in ("100RECNX/error_img.JPG", "101RECNX/IMG_0003.JPG"))


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


def test_what_would_stop_a_run_is_said_in_one_line_before_the_analysis(
    tmp_path: Path, images: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not after hours of it: a folder name that is a file, the output named as a folder, a card that
    is not there (not mounted, or a typo), and models that are not there."""
    card = tmp_path / "card"
    card.mkdir()
    shutil.copy(images / "camera-trap" / "IMAG1065_cougar.JPG", card)
    (tmp_path / "notes").write_text("a file where the results' folder should be")
    for paths, output, line in (
        ("card", "notes/r.json", "cannot write notes/r.json: notes is a file, not a folder"),
        ("card", "card", "cannot write card: it is a folder (name a file, e.g. card/results.json)"),
        ("DCIM", "r.json", "no such file or folder: DCIM"),
    ):
        # in this process: the refusal comes before any model is loaded
        monkeypatch.chdir(tmp_path)
        returned = run_detect(build_parser().parse_args(["detect", paths, "-o", output, "--no-progress"]))
        assert (returned, capsys.readouterr().out) == (2, f"yaguar detect: {line}\n")
    # no shared data and no --model-dir: the models are looked for where `yaguar models fetch` puts them
    monkeypatch.setenv("YAGUAR_DATA_DIR", str(tmp_path / "no-shared-data"))
    assert run_detect(build_parser().parse_args(["detect", "card", "-o", "r.json", "--no-progress"])) == 2
    said = capsys.readouterr().out
    assert f"model file {tmp_path / 'models' / 'yolox_nano.onnx'} is missing" in said
    assert "(try `yaguar models fetch yolox_nano`)" in said and said.count("\n") == 1
    assert sorted(p.name for p in card.iterdir()) == ["IMAG1065_cougar.JPG"]


def _boxes(image: dict[str, Any]) -> list[tuple[str, list[float]]]:
    return [(d["category"], d["bbox"]) for d in image.get("detections") or []]


def _same_animal(found: list[tuple[str, list[float]]], reference: list[float]) -> bool:
    return any(category == "1" and iou_xywh(bbox, reference) >= 0.8 for category, bbox in found)


def test_files_as_other_camera_traps_write_them(tmp_path: Path, images: Path, models_dir: Path) -> None:
    """One run over the same cougar as other cameras and tools save it: each finds the same animal in
    the picture as displayed (MegaDetector's coordinates). A JPEG cut short is analysed as far as it
    goes, as MegaDetector does (Pillow with LOAD_TRUNCATED_IMAGES); one cut before its image data is a
    failure with its reason, and the run goes on."""
    card = tmp_path / "card"
    nested = card / "Cámara 2" / "100 RECNX"
    nested.mkdir(parents=True)
    with Image.open(images / "camera-trap" / "IMAG1065_cougar.JPG") as source:
        cougar = source.convert("RGB").reduce(2)
    cougar.save(card / "orig.jpg", quality=90)
    rotated = Image.Exif()
    rotated[0x0112] = 6  # shown turned 90 degrees clockwise: stored turned the other way
    cougar.transpose(Image.Transpose.ROTATE_90).save(card / "rot6.jpg", quality=90, exif=rotated.tobytes())
    cougar.save(nested / "puma de día.JPEG", quality=90, progressive=True)
    cougar.convert("L").save(card / "grey.png")  # weaker than in colour: it needs the closer look's pixels
    cougar.convert("CMYK").save(card / "cmyk.jpg", quality=90)
    # 16:9 with a black info bar on top: the frame's lower 720 rows
    wide = cougar.crop((0, 240, 1280, 960))
    wide.paste((0, 0, 0), (0, 0, 1280, 60))
    wide.save(card / "wide.jpg", quality=90)
    # upside down, the cougar (at the bottom of the frame) comes first in the file, before the cut
    cougar.transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(card / "flipped.jpg", quality=90)
    flipped = (card / "flipped.jpg").read_bytes()
    (card / "cut.jpg").write_bytes(truncated(flipped, 0.7))
    (card / "header_only.jpg").write_bytes(flipped[:600])
    (card / "flipped.jpg").unlink()
    # a name that is not UTF-8 (Latin-1 "café" from an old card)
    latin1 = os.fsdecode(b"caf\xe9.jpg")
    (card / latin1).write_bytes((card / "orig.jpg").read_bytes())
    # 64 MP, as "interpolated" trail cameras write them (one grey channel keeps the test cheap)
    grey = cv2.cvtColor(np.asarray(cougar), cv2.COLOR_RGB2GRAY)
    (card / "big.jpg").write_bytes(encode(cv2.resize(grey, (9216, 6912), interpolation=cv2.INTER_NEAREST)))

    # turned or mirrored with an EXIF orientation tag (6 above); other formats; a broken GIF
    for orientation, turn in ((2, Image.Transpose.FLIP_LEFT_RIGHT), (4, Image.Transpose.FLIP_TOP_BOTTOM)):
        tag = Image.Exif()
        tag[0x0112] = orientation
        cougar.transpose(turn).save(card / f"tag{orientation}.jpg", quality=90, exif=tag.tobytes())
    for suffix in ("bmp", "gif", "tif", "webp"):
        cougar.save(card / f"cougar.{suffix}")
    (card / "broken.gif").write_bytes((card / "cougar.gif").read_bytes()[:40])
    # named as another kind than they hold (saved from the web, renamed by hand): read as what they hold
    cougar.save(card / "png_named.jpg", "PNG")
    cougar.save(card / "webp_named.jpg", "WEBP")
    shutil.copy(card / "orig.jpg", card / "jpeg_named.png")
    # hidden: macOS's resource-fork copy and a viewer's thumbnails, which MegaDetector passes over too
    (card / "._orig.jpg").write_bytes(b"\x00\x05\x16\x07" + bytes(4092))
    (card / ".thumbnails").mkdir()
    shutil.copy(card / "orig.jpg", card / ".thumbnails" / "orig.jpg")

    run, data = _detect_card(card, models_dir, "20 images, 2 could not be read")
    by_file = {image["file"]: image for image in data["images"]}
    assert "before its image data" in by_file["header_only.jpg"]["failure"]
    assert by_file["broken.gif"]["failure"] == "the GIF could not be decoded (damaged, or not a GIF)"
    assert not [name for name in by_file if name.startswith(".") or "/." in name]
    animals = [bbox for category, bbox in _boxes(by_file["orig.jpg"]) if category == "1"]
    assert len(animals) == 1
    upright = ("rot6.jpg", "Cámara 2/100 RECNX/puma de día.JPEG", "grey.png", "cmyk.jpg", "big.jpg")
    formats = ("cougar.bmp", "cougar.gif", "cougar.tif", "cougar.webp")
    for name in (*upright, *formats, "png_named.jpg", "webp_named.jpg", "jpeg_named.png"):
        assert _same_animal(_boxes(by_file[name]), animals[0]), (name, by_file[name])
    x, y, w, h = animals[0]
    # a mirrored tag leaves the picture as stored in MegaDetector, and so its boxes
    assert _same_animal(_boxes(by_file["tag2.jpg"]), [1 - x - w, y, w, h]), by_file["tag2.jpg"]
    assert _same_animal(_boxes(by_file["tag4.jpg"]), [x, 1 - y - h, w, h]), by_file["tag4.jpg"]
    assert _same_animal(_boxes(by_file["wide.jpg"]), [x, (y * 960 - 240) / 720, w, h * 960 / 720])
    assert _same_animal(_boxes(by_file["cut.jpg"]), [x, 1 - y - h, w, h]), by_file["cut.jpg"]
    assert "cut.jpg: the JPEG is truncated" in run.stderr
    assert _same_animal(_boxes(by_file[latin1]), animals[0])
    rows = list(csv.DictReader((tmp_path / "results" / "results.csv").open(encoding="utf-8")))
    assert {r["file"] for r in rows} == {
        name.encode("utf-8", "backslashreplace").decode() for name in by_file
    }
