"""The burst yardstick: frames and bursts found on a real PIR burst, as the station receives it.

``bench/quality.py`` scores single frames against MegaDetector's boxes; it has no burst, so what a
burst adds (motion crops, and ``burst_sure`` sparing the closer look on frames of a burst that already
has a sure box) is measured here. The shared data's only burst with boxes is the Camtrap DP example
package (``camtrap-dp-1.0.2/example``): a 10-frame infrared night burst of a grey heron, boxed frame by
frame by Agouti's species model (``classificationMethod`` "machine"), not by MegaDetector. Its
``observations.csv`` boxes are read as they are (normalised x, y, width, height).

Each setting analyses the burst in order, one camera, one burst id (motion compares each frame with
the burst's previous one), with the motion skip off so that every frame is looked at. A frame is found
when one of our boxes overlaps a box of the package with IoU >= 0.3 (any category), and the burst is
found when one of its frames is.

    .venv/bin/python bench/burst_quality.py
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Any

from yaguar.engine.analyser import Analyser, FrameInput
from yaguar.engine.config import PipelineConfig
from yaguar.engine.look import thorough
from yaguar.engine.postprocess import iou_xywh
from yaguar.engine.quality import MATCH_IOU
from yaguar.paths import shared_data_dir

PACKAGE = Path("camtrap-dp-1.0.2") / "example"
SETTINGS: dict[str, dict[str, Any]] = {
    "station": {},
    "station, no motion crops": {"look": {"motion_crops": False}},
    "station, burst_sure off": {"look": {"burst_sure": False}},
    "burst_sure off, no motion crops": {"look": {"burst_sure": False, "motion_crops": False}},
    "yaguar detect": {"look": thorough().model_dump()},
    "yaguar detect, no motion crops": {"look": {**thorough().model_dump(), "motion_crops": False}},
}


def boxed_bursts(package: Path) -> dict[str, list[tuple[Path, list[list[float]]]]]:
    """The package's bursts (its ``eventID``) whose frames are on disk, each frame in time order with
    the boxes the package gives it."""
    with (package / "media.csv").open(newline="") as handle:
        files = {row["mediaID"]: package / "media" / row["fileName"] for row in csv.DictReader(handle)}
    bursts: dict[str, dict[Path, list[list[float]]]] = {}
    with (package / "observations.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            path = files.get(row["mediaID"])
            if not row["bboxX"] or path is None or not path.exists():
                continue
            box = [float(row[key]) for key in ("bboxX", "bboxY", "bboxWidth", "bboxHeight")]
            bursts.setdefault(row["eventID"], {}).setdefault(path, []).append(box)
    return {event: sorted(frames.items(), key=lambda item: item[0].name) for event, frames in bursts.items()}


def found_frames(analyser: Analyser, burst: str, frames: list[tuple[Path, list[list[float]]]]) -> list[bool]:
    """Whether each frame of the burst, analysed in order as the station does, has a box on one of the
    package's."""
    inputs = [
        analyser.decode(FrameInput(path.name, "burst-camera", burst, data=path.read_bytes()))
        for path, _ in frames
    ]
    results = analyser.analyse(inputs)
    return [
        any(iou_xywh(d.bbox, box) >= MATCH_IOU for d in result.detections for box in boxes)
        for result, (_, boxes) in zip(results, frames, strict=True)
    ]


def main() -> int:
    shared = shared_data_dir()
    if shared is None:
        print("shared data (../shared/data or YAGUAR_DATA_DIR) is not present: nothing to measure")
        return 1
    bursts = boxed_bursts(shared / PACKAGE)
    total = sum(len(frames) for frames in bursts.values())
    print(
        f"reference: the Camtrap DP example package's own boxes (Agouti's model), IoU >= {MATCH_IOU}; "
        f"{len(bursts)} burst(s), {total} frames"
    )
    print(f"{'setting':34} {'frames':>7} {'bursts':>7} {'ms/frame':>9}  each frame in order")
    for name, overrides in SETTINGS.items():
        config = PipelineConfig.model_validate({**overrides, "enabled": True, "skip_without_motion": False})
        analyser = Analyser(config)
        start = time.perf_counter()
        found = {event: found_frames(analyser, event, frames) for event, frames in bursts.items()}
        ms = (time.perf_counter() - start) / total * 1000
        frames_found = sum(sum(flags) for flags in found.values())
        bursts_found = sum(any(flags) for flags in found.values())
        pattern = " | ".join("".join("x" if f else "." for f in flags) for flags in found.values())
        print(
            f"{name:34} {frames_found:>3}/{total:<3} {bursts_found:>3}/{len(bursts):<3} {ms:9.0f}  {pattern}"
        )
    print("frames: frames with a box on the package's; bursts: bursts with such a frame; x found, . missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
