"""Real detections on real images with the shipped models on onnxruntime (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yaguar.engine.decode import read_image
from yaguar.engine.detector import Detector
from yaguar.engine.manifest import find_manifest
from yaguar.engine.postprocess import iou_xywh


@pytest.fixture(scope="session")
def yolox(models_dir: Path) -> Detector:
    return Detector(find_manifest("yolox_nano"), models_dir)


@pytest.fixture(scope="session")
def fastestdet(models_dir: Path) -> Detector:
    return Detector(find_manifest("fastestdet"), models_dir)


def _detect(detector: Detector, path: Path, min_side: int | None = 416):
    return detector.detect([read_image(path, min_side).pixels])[0]


@pytest.mark.parametrize("model", ["yolox", "fastestdet"])
def test_dog_is_a_dog(model: str, request: pytest.FixtureRequest, images: Path) -> None:
    found = _detect(request.getfixturevalue(model), images / "classic" / "dog.jpg")
    dogs = [d for d in found if d.label == "dog"]
    assert dogs and dogs[0].category == "animal"
    # the dog sits in the lower left of the picture
    x, y, w, h = dogs[0].bbox
    assert 0.1 < x < 0.25 and 0.3 < y < 0.45 and 0.2 < w < 0.35 and 0.5 < h < 0.65
    assert {"bicycle", "car"} <= {d.label for d in found}
    assert {d.category for d in found if d.label in ("bicycle", "car")} == {"vehicle"}


@pytest.mark.parametrize("model", ["yolox", "fastestdet"])
def test_eagle_is_a_bird(model: str, request: pytest.FixtureRequest, images: Path) -> None:
    found = _detect(request.getfixturevalue(model), images / "classic" / "eagle.jpg")
    assert [d.label for d in found] == ["bird"]
    assert found[0].confidence > 0.8


@pytest.mark.parametrize("model", ["yolox", "fastestdet"])
@pytest.mark.parametrize("name", ["classic/scream.jpg", "camera-trap/B013_IMG_0005_empty.jpeg"])
def test_nothing_above_threshold_on_empty_images(
    model: str, name: str, request: pytest.FixtureRequest, images: Path
) -> None:
    detector = request.getfixturevalue(model)
    assert _detect(detector, images / name) == []


def test_person_and_animals_in_one_frame(yolox: Detector, images: Path) -> None:
    found = _detect(yolox, images / "classic" / "person.jpg")
    assert {d.category for d in found} == {"person", "animal"}
    assert all(0 <= v <= 1 for d in found for v in d.bbox)


def test_jaguars_found_where_megadetector_found_them(
    yolox: Detector, images: Path, shared_data: Path
) -> None:
    reference = json.loads((shared_data / "reference" / "megadetector_v5_boxes.json").read_text())["images"]
    frames = sorted((images / "jaguar").glob("*.jpg"))
    scored = 0
    matched = []
    for path in frames:
        animals = [r["bbox"] for r in reference.get(path.name, []) if r["category"] == "animal"]
        if not animals:
            continue
        scored += 1
        found = [d for d in _detect(yolox, path, None) if d.category == "animal"]
        if any(iou_xywh(d.bbox, ref) >= 0.3 for d in found for ref in animals):
            matched.append(path.name)
    assert scored >= 10
    # YOLOX-nano is a COCO model (the jaguar often comes out as "giraffe"): mapped to "animal", it still
    # finds the jaguar on a clear majority of frames, day and night.
    assert len(matched) / scored >= 0.6, matched


def test_batch_gives_the_same_boxes_as_one_by_one(yolox: Detector, images: Path) -> None:
    paths = [
        images / "classic" / "dog.jpg",
        images / "classic" / "eagle.jpg",
        images / "classic" / "scream.jpg",
    ]
    pixels = [read_image(p, 416).pixels for p in paths]
    batched = yolox.detect(pixels)
    single = [yolox.detect([p])[0] for p in pixels]
    assert [[d.bbox for d in r] for r in batched] == [[d.bbox for d in r] for r in single]


def test_one_animal_boxed_as_two_coco_classes_counts_once() -> None:
    from yaguar.engine.detector import Detection, merge_same_category

    cat = Detection("animal", "cat", 0.8, [0.40, 0.40, 0.20, 0.20])
    dog = Detection("animal", "dog", 0.5, [0.41, 0.40, 0.20, 0.21])  # the same jaguar, another label
    other = Detection("animal", "dog", 0.45, [0.05, 0.05, 0.10, 0.10])  # a second animal
    person = Detection("person", "person", 0.6, [0.40, 0.40, 0.20, 0.20])  # overlap across categories stays
    kept = merge_same_category([cat, person, dog, other], iou_threshold=0.45)
    assert kept == [cat, person, other]
