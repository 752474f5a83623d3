"""The one MegaDetector writer (format 1.6): categories, ids, clipping, rounding and the threshold."""

from __future__ import annotations

from datetime import UTC, datetime

from yaguar.engine.batch_output import BatchOutput, Box, validate_batch_output
from yaguar.engine.detector import Detection

NOW = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)


def test_categories_ids_boxes_and_threshold_follow_the_format() -> None:
    out = BatchOutput("yolox_nano", ["inat-birds"], threshold=0.35)
    out.add(
        "a.jpg",
        [
            Box("animal", 0.91234, (0.8, -0.1, 0.5, 0.3), "Panthera onca", 0.77777),
            Box("person", 1.2, (0.1, 0.2, 0.3, 0.4)),
            Box("animal", 0.5, (0.0, 0.0, 0.1, 0.1), "Tapirus terrestris", 0.5),
            Box("boat", 0.9, (0.0, 0.0, 0.1, 0.1)),  # no category in the format: left out
        ],
    )
    out.add("b.jpg", None, failure="cannot read the file")
    data = out.to_dict(NOW)
    assert validate_batch_output(data) == []
    assert data["info"]["detector_metadata"] == {"typical_detection_threshold": 0.35}
    assert data["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    jaguar, person, tapir = data["images"][0]["detections"]
    assert jaguar == {
        "category": "1",
        "conf": 0.912,
        "bbox": [0.8, 0.0, 0.2, 0.3],  # clipped inside the image
        "classifications": [["1", 0.778]],
    }
    assert person["category"] == "2" and person["conf"] == 1.0
    assert tapir["classifications"] == [["2", 0.5]]
    assert data["classification_categories"] == {"1": "Panthera onca", "2": "Tapirus terrestris"}
    assert data["classification_category_descriptions"]["1"] == "jaguar"
    assert data["images"][0]["max_detection_conf"] == 1.0
    assert data["images"][1] == {"file": "b.jpg", "failure": "cannot read the file", "detections": None}


def test_no_threshold_no_claim_and_engine_detections_write_the_same() -> None:
    out = BatchOutput("d", [])
    assert "detector_metadata" not in out.to_dict(NOW)["info"]
    engine = Detection("animal", "cat", 0.5, [0.9, 0.9, 0.2, 0.2])
    station = Box("animal", 0.5, (0.9, 0.9, 0.2, 0.2))
    assert out.add("x.jpg", [engine])["detections"] == out.add("y.jpg", [station])["detections"]
