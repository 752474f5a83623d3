"""The closer look (engine/look.py) and the classifier's second opinion (engine/arbiter.py) on real frames."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.engine import encode
from yaguar.engine.analyser import Analyser, FrameInput, FrameResult
from yaguar.engine.arbiter import general_classifier, second_opinion
from yaguar.engine.classifier import Classifier
from yaguar.engine.config import PipelineConfig
from yaguar.engine.decode import DecodedImage, decode_jpeg
from yaguar.engine.detector import Detection
from yaguar.engine.look import Look, LookConfig, LookFrame, fuse, tile_boxes
from yaguar.engine.manifest import find_manifest
from yaguar.engine.motion import MotionResult
from yaguar.engine.quality import blank_frames


def _box(category: str, confidence: float, bbox: list[float], label: str = "dog") -> Detection:
    return Detection(category, label, confidence, bbox)


@pytest.fixture(scope="module")
def tiled(models_dir: Path) -> Analyser:
    look = LookConfig(tiles="unsure", closer_input=None, motion_crops=True, finer_decode=True)
    return Analyser(PipelineConfig(enabled=True, model_dir=models_dir, classifiers=[], look=look))


def test_tiles_overlap_and_cover_the_frame() -> None:
    rects = tile_boxes(4000, 3000, (3, 3), 0.2)
    assert len(rects) == 9
    covered = np.zeros((3000, 4000), bool)
    for x, y, w, h in rects:
        covered[y : y + h, x : x + w] = True
        assert w == rects[0][2] and h == rects[0][3]
    assert covered.all()
    assert rects[1][0] < rects[0][0] + rects[0][2]  # neighbours overlap


def test_an_image_smaller_than_a_tile_is_one_tile_and_the_passes_run(tiled: Analyser) -> None:
    assert tile_boxes(60, 40, (3, 3), 0.2, min_tile=416) == [(0, 0, 60, 40)]
    assert len(tile_boxes(1000, 750, (3, 3), 0.2, min_tile=416)) == 4  # 2 x 2 tiles of at least 416
    tiny = np.full((40, 60, 3), 120, np.uint8)
    frame = tiled.decode(FrameInput("tiny", "cam", None, data=encode(tiny)))
    result = tiled.analyse([frame])[0]
    assert result.state == "done" and result.detections == []


def test_a_50_mp_frame_is_looked_at_closely_in_bounded_memory(tiled: Analyser, images: Path) -> None:
    base = cv2.imread(str(images / "jaguar" / "AREAS_21_20050915_2039.jpg"))
    data = encode(cv2.resize(base, (8160, 6120), interpolation=cv2.INTER_LINEAR), quality=85)
    del base
    tracemalloc.start()
    frame = tiled.decode(FrameInput("big", "cam", None, data=data))
    result = tiled.analyse([frame])[0]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.state == "done" and (result.width, result.height) == (8160, 6120)
    # A full decode alone is 150 MB; the tiles read a decode reduced to what they need.
    assert peak < 80e6, f"peak {peak / 1e6:.0f} MB"


def test_fusion_nms_keeps_the_best_and_wbf_averages_over_the_passes() -> None:
    a = [0.10, 0.10, 0.20, 0.20]
    b = [0.12, 0.10, 0.20, 0.20]
    kept = fuse([_box("animal", 0.6, list(a)), _box("animal", 0.9, list(b))], "nms", 0.45)
    assert [(d.confidence, d.bbox) for d in kept] == [(0.9, b)]
    fused = fuse(
        [_box("animal", 0.6, list(a)), _box("animal", 0.9, list(b)), _box("person", 0.7, list(a))],
        "wbf",
        0.45,
        passes=2,
    )
    animal = next(d for d in fused if d.category == "animal")
    assert animal.confidence == pytest.approx(0.75)
    assert animal.bbox[0] == pytest.approx((0.10 * 0.6 + 0.12 * 0.9) / 1.5, abs=1e-4)
    assert {d.category for d in fused} == {"animal", "person"}
    alone = fuse([_box("animal", 0.8, list(a))], "wbf", 0.45, passes=2)
    assert alone[0].confidence == pytest.approx(0.4)  # one pass of two saw it


def test_weak_boxes_in_the_camera_stamp_band_are_dropped(tiled: Analyser) -> None:
    look: Look = tiled.look
    stamp = _box("person", 0.4, [0.89, 0.90, 0.02, 0.04])
    sure_stamp = _box("person", 0.8, [0.89, 0.90, 0.02, 0.04])
    animal = _box("animal", 0.4, [0.3, 0.8, 0.2, 0.15])
    assert look._without_stamps([stamp, sure_stamp, animal]) == [sure_stamp, animal]


@pytest.fixture(scope="module")
def imagenet(models_dir: Path) -> Classifier:
    classifier = general_classifier([Classifier(find_manifest("mobilenet_v2_imagenet_quant"), models_dir)])
    assert classifier is not None
    return classifier


def test_second_opinion_names_an_infrared_fox_an_animal(imagenet: Classifier, images: Path) -> None:
    image = decode_jpeg((images / "camera-trap" / "2021-08-08_RCNX0063_fox.JPG").read_bytes(), 2000).pixels
    weak = _box("person", 0.46, [0.321, 0.578, 0.188, 0.129], label="person")
    sure = _box("person", 0.9, [0.321, 0.578, 0.188, 0.129], label="person")
    kept = second_opinion(image, [weak, sure], imagenet, sure=0.5, min_probability=0.2)
    # The classifier is sure it sees a fox (grey fox 0.6): even the confident "person" is an animal.
    assert [d.category for d in kept] == ["animal", "animal"]
    assert weak.extra["detector_category"] == "person" and "fox" in str(sure.extra["second_opinion"])


def test_second_opinion_leaves_a_real_person_a_person(imagenet: Classifier, images: Path) -> None:
    image = decode_jpeg((images / "classic" / "person.jpg").read_bytes(), 640).pixels
    person = _box("person", 0.85, [0.29, 0.24, 0.15, 0.62], label="person")
    assert second_opinion(image, [person], imagenet, sure=0.5, min_probability=0.2) == [person]
    assert person.category == "person"


def test_second_opinion_drops_a_weak_animal_on_a_stump(imagenet: Classifier) -> None:
    wolf_blank = dict(blank_frames())["blank:IMAG0031_wolf.JPG"]
    image = decode_jpeg(wolf_blank, 2000).pixels
    stump = _box("animal", 0.31, [0.3161, 0.5037, 0.0747, 0.1229], label="bear")
    assert second_opinion(image, [stump], imagenet, sure=0.5, min_probability=0.2) == []


def test_motion_regions_get_a_crop_where_no_box_is(tiled: Analyser, images: Path) -> None:
    """A region that moved and that no box covers is cut out and looked at; its boxes come back in
    frame coordinates."""
    image = decode_jpeg((images / "jaguar" / "AREAS_21_20051019_1443.jpg").read_bytes(), 1800).pixels
    small = cv2.resize(image, (450, 304), interpolation=cv2.INTER_AREA)
    region = [0.33, 0.40, 0.46, 0.38]  # the jaguar, as MegaDetector boxed it
    frame = LookFrame(small, False, [region], lambda side: image)
    found = tiled.look._motion_crops(frame, [])
    assert any(
        d.category == "animal" and abs(d.bbox[0] - 0.35) < 0.1 and abs(d.bbox[1] - 0.42) < 0.1 for d in found
    )
    covered = tiled.look._motion_crops(frame, [_box("animal", 0.9, [0.35, 0.42, 0.43, 0.35])])
    assert covered == []


def test_the_closer_look_is_turned_off_with_a_zero_size() -> None:
    """TOML has no null: ``closer_input = [0, 0]`` in station.toml turns the closer look off."""
    assert PipelineConfig.model_validate({"look": {"closer_input": [0, 0]}}).look.closer_input is None
    assert PipelineConfig().look.closer_input == (832, 640)


def test_an_implausible_label_needs_the_classifier_to_see_an_animal(
    imagenet: Classifier, shared_data: Path, images: Path
) -> None:
    """A confident "aeroplane" on the rock of a real infrared heron burst is not kept as a vehicle; a
    dog's bicycle, a plausible vehicle, is."""
    burst = shared_data / "camtrap-dp-1.0.2" / "example" / "media"
    image = decode_jpeg((burst / "20210531082540-RCNX0039.JPG").read_bytes(), 1000).pixels
    rock = _box("vehicle", 0.6, [0.0012, 0.7711, 0.3054, 0.2225], label="aeroplane")
    implausible = frozenset({"aeroplane", "airplane", "train", "bus"})
    assert second_opinion(image, [rock], imagenet, 0.5, 0.2, implausible) == []
    dog = decode_jpeg((images / "classic" / "dog.jpg").read_bytes(), 768).pixels
    bicycle = _box("vehicle", 0.74, [0.1664, 0.2612, 0.5854, 0.4998], label="bicycle")
    assert second_opinion(dog, [bicycle], imagenet, 0.5, 0.2, implausible) == [bicycle]
    assert bicycle.category == "vehicle"


class _Counted:
    """Counts the calls to one real model's method (the model still runs)."""

    def __init__(self, owner: object, method: str) -> None:
        self.calls = 0
        self.items = 0
        real = getattr(owner, method)

        def counted(images: list[np.ndarray], *args: object, **kwargs: object) -> object:
            self.calls += 1
            self.items += len(images)
            return real(images, *args, **kwargs)

        setattr(owner, method, counted)


@pytest.fixture(scope="module")
def station(models_dir: Path) -> Analyser:
    return Analyser(PipelineConfig(enabled=True, model_dir=models_dir))


def test_the_closer_look_runs_only_where_the_first_pass_saw_a_candidate_or_at_night(
    station: Analyser, images: Path
) -> None:
    """A cascade: by day the closer look runs where the first pass saw a weak candidate (the small
    jaguar of AREAS_28, a 0.2 "bird"), not on a frame where it saw nothing; an infrared frame always
    gets it."""
    assert station.look.closer is not None
    closer = _Counted(station.look.closer, "detect")
    blanks = dict(blank_frames())

    def look(data: bytes, night: bool) -> list[Detection]:
        pixels = decode_jpeg(data, station.min_side).pixels
        return station.look.detect([LookFrame(pixels, night, [], lambda side: None)])[0]

    assert look(blanks["blank:AABP_13_20051007_1205.jpg"], night=False) == []
    assert closer.items == 0
    jaguar = look((images / "jaguar" / "AREAS_28_20051017_1554.jpg").read_bytes(), night=False)
    assert closer.items == 1 and [d.category for d in jaguar] == ["animal"]
    look(blanks["blank:2021-05-28_SYFR0041_deer.JPG"], night=True)
    assert closer.items == 2


def test_naming_the_species_reuses_the_second_opinion(station: Analyser, images: Path) -> None:
    """The infrared fox's weak boxes are shown to the ImageNet classifier once: the species comes from
    the same guesses."""
    assert station.arbiter is not None
    classified = _Counted(station.arbiter, "classify")
    data = (images / "camera-trap" / "2021-08-08_RCNX0063_fox.JPG").read_bytes()
    found = station.analyse([station.decode(FrameInput("fox", "fox-cam", None, data=data))])[0].detections
    assert found and all(d.confidence < 0.5 for d in found)  # weak: every box had the second opinion
    assert classified.calls == 1 and classified.items == len(found)
    assert all(d.category == "animal" and d.species is not None for d in found)


def test_motion_regions_are_hints_only_when_the_rest_of_the_frame_stayed_still(station: Analyser) -> None:
    pixels = np.full((375, 500, 3), 100, np.uint8)
    frame = FrameInput("f", "cam", "burst", decoded=DecodedImage(pixels, 4000, 3000, 8))
    region = [[0.1, 0.1, 0.1, 0.1]]
    still = FrameResult("f", "done", motion=MotionResult(0.02, True, False, "burst", region))
    assert station._look_frame(frame, still).motion_regions == region
    changed = FrameResult("f", "done", motion=MotionResult(0.4, True, False, "burst", region))
    assert station._look_frame(frame, changed).motion_regions == []


def test_a_burst_with_a_sure_box_gets_no_closer_look_on_its_weaker_frames(
    station: Analyser, images: Path
) -> None:
    """The trigger's animal is known from its sure frame: the weak view of the burst's other frame
    costs one pass; the same weak frame in a burst of its own gets the closer look."""
    assert station.look.closer is not None
    closer = _Counted(station.look.closer, "detect")
    sure = decode_jpeg((images / "jaguar" / "AABP_9_20051024_0559.jpg").read_bytes(), 416).pixels
    weak = decode_jpeg((images / "jaguar" / "AREAS_28_20051017_1554.jpg").read_bytes(), 416).pixels

    def frame(pixels: np.ndarray, burst: str) -> LookFrame:
        return LookFrame(pixels, False, [], lambda side: None, burst)

    found = station.look.detect([frame(sure, "cam-a/1"), frame(weak, "cam-a/1")])
    assert found[0][0].confidence >= 0.5 and closer.items == 0
    assert station.look.detect([frame(weak, "cam-a/1")]) == [[]]  # a later batch: still known
    assert closer.items == 0
    assert [d.category for d in station.look.detect([frame(weak, "cam-b/7")])[0]] == ["animal"]
    assert closer.items == 1
