"""The motion filter on bursts built from real frames (shifted, cropped, with real-world noise) and on a
real infrared night burst."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.engine import moving_burst, read_bgr, static_burst
from yaguar.engine.motion import MotionFilter


@pytest.fixture(scope="module")
def day_scene(images: Path) -> np.ndarray:
    return read_bgr(images / "camera-trap" / "B013_IMG_0005_empty.jpeg")


@pytest.fixture(scope="module")
def cougar(images: Path, shared_data: Path) -> np.ndarray:
    """The cougar cut out of a real frame, at the box MegaDetector drew around it."""
    name = "IMAG1065_cougar.JPG"
    box = json.loads((shared_data / "reference" / "megadetector_v5_boxes.json").read_text())["images"][name][
        0
    ]
    frame = read_bgr(images / "camera-trap" / name, 4)
    h, w = frame.shape[:2]
    x, y, bw, bh = box["bbox"]
    animal = frame[int(y * h) : int((y + bh) * h), int(x * w) : int((x + bw) * w)]
    return animal


@pytest.fixture(scope="module")
def heron_burst(shared_data: Path) -> list[np.ndarray]:
    files = sorted((shared_data / "camtrap-dp-1.0.2" / "example" / "media").glob("*.JPG"))
    assert len(files) == 10
    return [read_bgr(f, 4) for f in files]


def _run(burst: list[np.ndarray], motion: MotionFilter, camera: str = "cam-1", burst_id: str = "b1"):
    return [motion.update(camera, frame, burst_id) for frame in burst]


def test_static_day_burst_is_dropped(day_scene: np.ndarray) -> None:
    results = _run(static_burst(day_scene, 6, np.random.default_rng(1)), MotionFilter())
    assert results[0].reference == "none" and results[0].moved  # nothing to compare the first frame with
    assert [r.moved for r in results[1:]] == [False] * 5
    assert all(not r.night and r.reference == "burst" for r in results[1:])
    assert max(r.score for r in results[1:]) < 0.003


def test_burst_with_a_moving_animal_is_kept(day_scene: np.ndarray, cougar: np.ndarray) -> None:
    results = _run(moving_burst(day_scene, cougar, 5, np.random.default_rng(2)), MotionFilter())
    assert all(r.moved for r in results[1:])
    # the largest changed region lies where the animal walked (lower half of the frame)
    for r in results[1:]:
        _, y, w, h = r.regions[0]
        assert y + h > 0.5 and w * h > 0.002


def test_background_model_catches_an_animal_at_the_start_of_a_burst(
    day_scene: np.ndarray, cougar: np.ndarray
) -> None:
    motion = MotionFilter()
    rng = np.random.default_rng(3)
    _run(static_burst(day_scene, 4, rng), motion, burst_id="quiet")
    # static_burst crops 2 pixels off each side (camera shake); the same crop for the visit
    first = motion.update("cam-1", moving_burst(day_scene[2:-2, 2:-2], cougar, 1, rng)[0], "visit")
    assert first.reference == "background" and first.moved
    calm = motion.update("cam-1", static_burst(day_scene, 1, rng)[0], "later")
    assert calm.reference == "background"
    # other cameras have their own state
    assert motion.update("cam-2", day_scene, "x").reference == "none"


def test_static_infrared_night_burst_is_dropped(heron_burst: list[np.ndarray]) -> None:
    motion = MotionFilter()
    results = _run(static_burst(heron_burst[3], 6, np.random.default_rng(4), jitter=1), motion)
    assert all(r.night for r in results)
    assert [r.moved for r in results[1:]] == [False] * 5


def test_real_infrared_burst_of_a_heron(heron_burst: list[np.ndarray], day_scene: np.ndarray) -> None:
    motion = MotionFilter()
    assert motion.is_night(heron_burst[0]) and not motion.is_night(day_scene)
    results = _run(heron_burst, motion)
    moved = [r.moved for r in results[1:]]
    # the heron shifts in most frames of its burst and stands still in a few
    assert sum(moved) >= 5 and not all(moved)
    assert all(r.regions for r, m in zip(results[1:], moved, strict=True) if m)
