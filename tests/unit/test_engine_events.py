"""Event voting, class-aware NMS and box normalisation, and the MegaDetector output validator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from yaguar.engine.batch_output import BatchOutput, validate_batch_output
from yaguar.engine.detector import Detection
from yaguar.engine.events import BoxVote, belongs, summarise
from yaguar.engine.postprocess import RawBoxes, decode_yolov5, decode_yolov8, iou_xywh, nms, normalise
from yaguar.engine.preprocess import Placement


def test_event_label_comes_from_a_vote_not_the_best_frame() -> None:
    jaguar = BoxVote("animal", 0.6, "Panthera onca", 0.7)
    frames = [
        [jaguar],
        [BoxVote("animal", 0.55, "Panthera onca", 0.6), BoxVote("animal", 0.4)],
        [BoxVote("person", 0.95)],  # one frame's false person, however confident, is outvoted
        [jaguar],
        [],
    ]
    summary = summarise(frames)
    assert summary.category == "animal" and summary.species == "Panthera onca"
    assert summary.count == 1  # most frames saw one; the frame with two boxes does not win
    assert summary.frames == 5 and summary.frames_with_detections == 4
    assert abs(summary.confidence - (0.6 + 0.55 + 0.6) / 3) < 1e-3


def test_species_votes_are_weighted_by_classifier_confidence() -> None:
    frames = [
        [BoxVote("animal", 0.8, "Puma concolor", 0.9)],
        [BoxVote("animal", 0.7, "Panthera onca", 0.3)],
        [BoxVote("animal", 0.7, "Panthera onca", 0.35)],
    ]
    assert summarise(frames).species == "Puma concolor"
    assert summarise([[BoxVote("animal", 0.5)], [BoxVote("animal", 0.5), BoxVote("animal", 0.4)]]).count == 2


def test_blank_event_and_grouping() -> None:
    assert summarise([[], []]).category == "blank"
    t0 = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
    gap = timedelta(seconds=60)
    assert belongs(t0, t0 + timedelta(seconds=5), {"burst-1"}, t0 + timedelta(hours=1), "burst-1", gap)
    assert belongs(t0, t0 + timedelta(seconds=5), {"burst-1"}, t0 + timedelta(seconds=50), "burst-2", gap)
    assert not belongs(t0, t0 + timedelta(seconds=5), {"burst-1"}, t0 + timedelta(seconds=90), "burst-2", gap)


def test_nms_is_class_aware() -> None:
    xyxy = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]], np.float32)
    boxes = RawBoxes(xyxy, np.array([0.9, 0.8, 0.7], np.float32), np.array([0, 0, 1]))
    kept = nms(boxes, 0.5)
    assert kept.classes.tolist() == [0, 1] and kept.scores.tolist() == [np.float32(0.9), np.float32(0.7)]


def test_boxes_are_normalised_like_megadetector() -> None:
    # a 640x480 image letterboxed centred into 640x640: 80 pixels of padding on top
    placement = Placement(1.0, 1.0, 0.0, 80.0, 640, 480)
    boxes = RawBoxes(np.array([[64, 128, 320, 560]], np.float32), np.array([0.9], np.float32), np.array([0]))
    x, y, w, h = normalise(boxes, placement)[0]
    assert np.allclose([x, y, w, h], [0.1, 0.1, 0.4, 0.9], atol=1e-6)  # clipped at the bottom edge
    assert (
        iou_xywh([0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]) == 1.0
        and iou_xywh([0, 0, 0.1, 0.1], [0.5, 0.5, 0.1, 0.1]) == 0
    )


def test_yolov8_output_layout() -> None:
    out = np.zeros((4 + 3, 5), np.float32)  # 3 classes, 5 anchors
    out[:4, 2] = [100, 50, 20, 10]
    out[4 + 1, 2] = 0.8
    decoded = decode_yolov8(out, 0.25)
    assert decoded.classes.tolist() == [1]
    assert decoded.xyxy.tolist() == [[90, 45, 110, 55]]


def test_yolov5_output_layout() -> None:
    # MegaDetector v5 exports: [anchors, 5 + classes], centre and size in input pixels, objectness first
    out = np.zeros((4, 5 + 3), np.float32)
    out[1, :5] = [640, 320, 100, 50, 0.9]
    out[1, 5 + 2] = 0.8  # vehicle
    out[2, :5] = [10, 10, 5, 5, 0.1]  # objectness below the threshold
    out[2, 5] = 1.0
    decoded = decode_yolov5(out, 0.25)
    assert decoded.classes.tolist() == [2]
    assert decoded.xyxy.tolist() == [[590, 295, 690, 345]]
    assert np.isclose(decoded.scores[0], 0.72)


def test_batch_output_validates_and_the_validator_catches_breaks() -> None:
    output = BatchOutput("yolox_nano@0.1.1", ["mobilenet_v2_imagenet_quant@1.0"])
    output.add(
        "a/IMG_0001.JPG", [Detection("animal", "cat", 0.9, [0.1, 0.2, 0.3, 0.4], "Panthera onca", 0.8)]
    )
    output.add("a/IMG_0002.JPG", [])
    output.add("a/IMG_0003.JPG", None, failure="the image is empty (0 bytes)")
    data = output.to_dict()
    assert validate_batch_output(data) == []
    assert data["info"]["format_version"] == "1.6"
    assert data["images"][0]["detections"][0]["classifications"] == [["1", 0.8]]
    assert data["classification_categories"] == {"1": "Panthera onca"}
    assert data["images"][1]["max_detection_conf"] == 0.0

    broken = output.to_dict()
    broken["images"][0]["detections"][0]["bbox"] = [0.8, 0.2, 0.5, 0.4]
    broken["images"][0]["detections"][0]["category"] = "7"
    broken["images"][2]["detections"] = []
    broken["extra"] = 1
    problems = validate_batch_output(broken)
    assert any("non-standard" in p for p in problems)
    del broken["extra"]
    problems = validate_batch_output(broken)
    assert any("inside the image" in p for p in problems)
    assert any("unmapped detection category" in p for p in problems)
    assert any("failure but a non-null" in p for p in problems)
    assert validate_batch_output(
        {"info": {"format_version": "1.0"}, "images": [], "detection_categories": {}}
    )
