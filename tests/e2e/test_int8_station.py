"""The station with the int8 YOLOX-nano of ``yaguar models quantize`` (calibrated on the shared
camera-trap and jaguar frames) on the shared bursts: the same events as with the float model (the
recall tolerance, 0.02 of 6 frames, allows no frame to differ)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_opencl_station import run_station
from yaguar.engine.manifest import find_manifest
from yaguar.engine.quantize import quantize_detector


def test_the_station_gives_the_same_events_with_the_int8_detector(
    broker, tmp_path: Path, shared_data: Path, images: Path, models_dir: Path
) -> None:
    mixed = tmp_path / "models"  # the shared models and the int8 copy in one model folder
    mixed.mkdir()
    for path in models_dir.iterdir():
        (mixed / path.name).symlink_to(path)
    calibration = [images / "camera-trap", images / "jaguar"]
    reference = shared_data / "reference" / "megadetector_v5_boxes.json"
    quantize_detector(find_manifest("yolox_nano"), models_dir, calibration, mixed, reference, images)
    floats = run_station(broker, tmp_path / "float", images, mixed, "onnxruntime")
    int8 = run_station(broker, tmp_path / "int8", images, mixed, "onnxruntime", detector="yolox_nano_int8")
    assert len(floats[1]) >= 2
    # the same events (frames, category, count); the species classifier sees a slightly different
    # box, so its answer may stop at the genus (Panthera for Panthera onca): same genus required
    assert [(e[0], e[1], e[3]) for e in int8[1]] == [(e[0], e[1], e[3]) for e in floats[1]]
    assert [e[2].split(" ")[0] for e in int8[1]] == [e[2].split(" ")[0] for e in floats[1]]
    # the same frames have animals, in the same categories
    assert {(d[0], d[2]) for d in int8[0]} == {(d[0], d[2]) for d in floats[0]}
