"""``yaguar detect`` as the held-out scoring runs it, on the shared jaguar and camera-trap frames: the
animals MegaDetector v5 found are found, the empty frame stays empty, and no COCO class is shown as
the animal in the CSV or the JSON."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

from tests.support.detect import detect_command
from yaguar.engine.batch_output import validate_batch_output
from yaguar.engine.labelmap import COCO_ANIMAL, COCO_PERSON, COCO_VEHICLE
from yaguar.engine.postprocess import iou_xywh
from yaguar.engine.quality import MATCH_IOU

FOUND_FLOOR = 13  # of the 15 MegaDetector animal frames copied below (measured: 13)


def test_detect_finds_megadetectors_animals_and_names_no_coco_class(
    tmp_path: Path, shared_data: Path, models_dir: Path
) -> None:
    card = tmp_path / "DCIM"
    card.mkdir()
    reference = json.loads((shared_data / "reference" / "megadetector_v5_boxes.json").read_text())["images"]
    copied = sorted((shared_data / "images" / "jaguar").glob("*.jpg")) + [
        shared_data / "images" / "camera-trap" / name
        for name in (
            "2021-05-28_SYFR0041_deer.JPG",
            "2021-08-08_RCNX0063_fox.JPG",
            "IMAG0031_wolf.JPG",
            "IMAG1065_cougar.JPG",
            "B013_IMG_0005_empty.jpeg",
        )
    ]
    for path in copied:
        shutil.copy(path, card / path.name)
    out = tmp_path / "results.json"
    run = subprocess.run(
        detect_command(card, out, models_dir),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    data = json.loads(out.read_text())
    assert validate_batch_output(data) == []
    images = {image["file"]: image for image in data["images"]}
    found = 0
    for name, boxes in reference.items():
        if name in images and any(b["category"] == "animal" for b in boxes):
            ours = [d["bbox"] for d in images[name]["detections"] if d["conf"] >= 0.2]
            found += any(iou_xywh(b["bbox"], o) >= MATCH_IOU for b in boxes for o in ours)
    assert found >= FOUND_FLOOR
    assert images["B013_IMG_0005_empty.jpeg"]["detections"] == []

    coco = COCO_ANIMAL | COCO_PERSON | COCO_VEHICLE
    with open(out.with_suffix(".csv"), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    shown = {row["label"] for row in rows if row.get("label")}
    assert shown and not (shown - {"person", "vehicle"}) & coco, shown
    assert "giraffe" not in out.read_text() and "giraffe" not in out.with_suffix(".csv").read_text()
