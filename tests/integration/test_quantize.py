"""`yaguar models quantize`: the shared FastestDet in int8, calibrated on the shared camera-trap frames
and scored against MegaDetector's boxes; a calibration folder with nothing usable and a calibration
that ruins the model are refused with their reasons, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.jpegs import truncated
from yaguar.engine.cli import main
from yaguar.engine.detector import Detector
from yaguar.engine.manifest import file_sha256, find_manifest, load_manifest
from yaguar.engine.quantize import QuantizeError, quantize_detector


def _reference(shared_data: Path) -> tuple[Path, Path]:
    return shared_data / "reference" / "megadetector_v5_boxes.json", shared_data / "images"


def _quantize(models_dir: Path, capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """`yaguar models quantize ARGS`: its exit code and what it printed."""
    code = main(["models", "--model-dir", str(models_dir), "quantize", *map(str, args)])
    return code, capsys.readouterr().out


def test_fastestdet_in_int8_keeps_its_recall_and_ships_manifest_and_card(
    tmp_path: Path, shared_data: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "models"
    images = shared_data / "images"
    code, printed = _quantize(
        models_dir,
        capsys,
        "fastestdet",
        "--calibration",
        images / "camera-trap",
        images / "jaguar",
        "--out",
        out,
    )
    assert code == 0, printed
    assert "fastestdet_int8@1.0-int8" in printed and "frames found" in printed
    manifest = load_manifest(out / "fastestdet_int8.toml")
    assert manifest.sha256 == file_sha256(out / "fastestdet_int8.onnx")
    card = (out / "fastestdet_int8.card.md").read_text()
    assert "MegaDetector" in card and "| int8 `fastestdet_int8.onnx` |" in card
    # the card's numbers: int8 recall within the tolerance of float's on the same frames
    rows = {
        line.split("|")[1].strip().split()[0]: line.split("|")[2]
        for line in card.splitlines()
        if "` |" in line
    }
    recall = {kind: float(cell.split("=")[1]) for kind, cell in rows.items()}
    assert recall["int8"] >= recall["float"] - 0.02 and recall["float"] > 0.3
    # the int8 model is an ordinary detector from its own folder (labels inline in its manifest)
    frames = [cv2.imread(str(p)) for p in sorted((shared_data / "images" / "camera-trap").glob("*.JPG"))]
    frames = [f for f in frames if f is not None]
    with_animal = [
        sum(any(d.category == "animal" for d in found) for found in detector.detect(frames))
        for detector in (Detector(manifest, out), Detector(find_manifest("fastestdet"), models_dir))
    ]
    assert with_animal[0] >= 3 and abs(with_animal[0] - with_animal[1]) <= 1, with_animal


def test_a_calibration_folder_with_no_usable_image_is_refused(
    tmp_path: Path, shared_data: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "calibration"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a photo")
    jpeg = (shared_data / "images" / "classic" / "dog.jpg").read_bytes()
    (folder / "broken.jpg").write_bytes(truncated(jpeg, 0.02))
    (folder / "empty.jpg").write_bytes(b"")
    out = tmp_path / "models"
    code, printed = _quantize(models_dir, capsys, "fastestdet", "--calibration", folder, "--out", out)
    assert code == 1
    assert "has no usable image" in printed and "1 not a JPEG" in printed, printed
    assert not out.exists()


def test_a_calibration_that_ruins_the_model_is_refused_with_the_numbers(
    tmp_path: Path, shared_data: Path, models_dir: Path
) -> None:
    """Calibrated on one dark frame, the activation ranges are far too narrow for daylight: the
    int8 copy misses frames that the original finds, and the refusal says by how much."""
    folder = tmp_path / "night"
    folder.mkdir()
    dark = np.full((480, 640, 3), 3, np.uint8)
    cv2.imwrite(str(folder / "dark.jpg"), dark)
    reference, images = _reference(shared_data)
    out = tmp_path / "models"
    with pytest.raises(
        QuantizeError, match=r"int8 refused, recall \d+/19 = [\d.]+ against float \d+/19"
    ) as err:
        quantize_detector(find_manifest("fastestdet"), models_dir, [folder], out, reference, images)
    assert "drop" in str(err.value) and "> 0.02" in str(err.value)
    assert not out.exists() or not any(out.iterdir())


def test_a_missing_calibration_folder_is_one_line(tmp_path: Path, models_dir: Path) -> None:
    with pytest.raises(QuantizeError, match="does not exist"):
        quantize_detector(find_manifest("fastestdet"), models_dir, [tmp_path / "nowhere"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_silu_int8_for_a_classifier_is_refused_in_one_line(
    tmp_path: Path, shared_data: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "models"
    jaguars = shared_data / "images" / "jaguar"
    code, printed = _quantize(
        models_dir,
        capsys,
        "mobilenet_v2_imagenet_quant",
        "--calibration",
        jaguars,
        "--silu-int8",
        "--out",
        out,
    )
    assert code == 1
    assert "--silu-int8 is for detectors" in printed and "is a classifier" in printed, printed
    assert not out.exists()
