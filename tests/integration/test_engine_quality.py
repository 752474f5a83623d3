"""The yardstick's floors: the station's default detection setting on the shared frames, scored against
MegaDetector v5's boxes on the station's own decode and analysis path (engine/quality.py).

The floors are what the default setting was measured to reach (bench/quality.py, engine/README.md);
a change that loses an animal frame or adds a false detection on a blank fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from yaguar.engine.config import PipelineConfig
from yaguar.engine.look import thorough
from yaguar.engine.quality import (
    ALERT_CONFIDENCE,
    QualityReport,
    blank_frames,
    reference_frames,
    score_setting,
)

DAY_FLOOR, NIGHT_FLOOR = 5, 9  # MegaDetector animal frames found, of 6 day and 12 night
DETECT_DAY_FLOOR, DETECT_NIGHT_FLOOR = 6, 10  # the same with `yaguar detect`'s closer look
MAX_FALSE_BLANKS = 0  # blanks (of 40) with any box written


@pytest.fixture(scope="module")
def report(shared_data: Path) -> QualityReport:
    return score_setting(PipelineConfig(), "station", shared_data)


@pytest.fixture(scope="module")
def detect_report(shared_data: Path) -> QualityReport:
    return score_setting(PipelineConfig(look=thorough()), "yaguar detect", shared_data)  # as detect_cli


def test_the_reference_and_the_blanks_are_what_the_floors_were_measured_on(shared_data: Path) -> None:
    frames = reference_frames(shared_data)
    animals = [f for f in frames if any(cat == "animal" for cat, _ in f.boxes)]
    assert (sum(not f.night for f in animals), sum(f.night for f in animals)) == (6, 12)
    blanks = blank_frames(shared_data)
    assert len(blanks) == 40 and sum(name.startswith("painted:") for name, _ in blanks) == 19


def test_recall_of_megadetector_animal_frames_day_and_night(report: QualityReport) -> None:
    assert report.recall("day")[0] >= DAY_FLOOR
    assert report.recall("night")[0] >= NIGHT_FLOOR


def test_no_false_detection_on_blank_frames(report: QualityReport) -> None:
    assert report.false_frames <= MAX_FALSE_BLANKS, [b for b in report.blanks if b.boxes]
    assert report.false_frames_at(ALERT_CONFIDENCE) == 0


def test_yaguar_detect_finds_more_and_still_no_false_detection(detect_report: QualityReport) -> None:
    assert detect_report.recall("day")[0] >= DETECT_DAY_FLOOR
    assert detect_report.recall("night")[0] >= DETECT_NIGHT_FLOOR
    assert detect_report.false_frames <= MAX_FALSE_BLANKS, [b for b in detect_report.blanks if b.boxes]
