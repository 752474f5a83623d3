"""The yardstick: recall of MegaDetector v5's animal frames (day and night), false detections on blank
frames, category confusion, and CPU cost per 12 MP frame, for detector settings on the station's path.

Each setting is a set of ``[pipeline]`` overrides (``PipelineConfig``); the scoring is
``yaguar.engine.quality.score_setting`` (see its docstring for the rules). The CPU cost is measured in
the same run for every setting, on 12 MP frames made by upscaling real frames (half day, half night),
decoded and analysed as the station does (species classifiers included, as at the station); the first
setting, ``plain`` (one pass at the manifest's own input size, no closer look, no second opinion), is
the reference of the ratio.

    .venv/bin/python bench/quality.py                      # every named setting
    .venv/bin/python bench/quality.py --setting plain --setting station
    .venv/bin/python bench/quality.py --config '{"detector": "fastestdet"}' --frames 8
    .venv/bin/python bench/quality.py --verbose            # each missed frame and each false box
    .venv/bin/python bench/quality.py --setting station --int8   # + the station with int8 YOLOX-nano
    .venv/bin/python bench/quality.py --setting station --int8 --silu-int8 --keep-int8 /tmp/q
                                     # + also with its SiLUs in int8; both kept for bench/engine.py --model-dir
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# bench/pipeline.py: the same 12 MP frames as the station benchmark, and the old single pass
from pipeline import PLAIN_LOOK, make_frames

from yaguar.engine.analyser import Analyser, FrameInput
from yaguar.engine.config import PipelineConfig
from yaguar.engine.look import thorough
from yaguar.engine.manifest import find_manifest
from yaguar.engine.quality import ALERT_CONFIDENCE, QualityReport, score_analyser
from yaguar.engine.quantize import quantize_detector
from yaguar.paths import shared_data_dir

# Named settings: overrides of the station's [pipeline] defaults ("station" is the defaults as they are).
SETTINGS: dict[str, dict[str, Any]] = {
    "plain": {"look": PLAIN_LOOK},  # one pass at the manifest's 416x416: the station before issue 13
    "yolox 640x480": {"detector_input": [640, 480], "look": PLAIN_LOOK},
    "yolox 832x640": {"detector_input": [832, 640], "look": PLAIN_LOOK},
    "fastestdet": {"detector": "fastestdet", "look": PLAIN_LOOK},
    "fastestdet 640x480": {"detector": "fastestdet", "detector_input": [640, 480], "look": PLAIN_LOOK},
    "closer, no 2nd opinion": {"look": {"second_opinion": 0, "finer_decode": True}},
    "station": {},
    "station, finer decode": {"look": {"finer_decode": True}},
    "yaguar detect": {"look": thorough().model_dump()},  # its defaults (engine/detect_cli.py)
    "finer + tiles unsure": {"look": {"finer_decode": True, "tiles": "unsure"}},
    "finer + tiles night": {"look": {"finer_decode": True, "tiles": "night"}},
    "finer + tiles night, clahe": {"look": {"finer_decode": True, "tiles": "night", "night_prep": "clahe"}},
    "finer + night clahe": {"look": {"finer_decode": True, "night_prep": "clahe"}},
    "finer + night gamma": {"look": {"finer_decode": True, "night_prep": "gamma"}},
    "station + fastestdet": {"look": {"ensemble": ["fastestdet"]}},
    "station, wbf": {"look": {"fusion": "wbf"}},
}


def cpu_ms_per_frame(analyser: Analyser, frames: list[bytes]) -> float:
    """CPU time (all threads of this process) to decode and analyse one 12 MP frame, in ms."""
    analyser.analyse([analyser.decode(FrameInput("warm", "warm", None, data=frames[0]))])
    start = time.process_time()
    for index, data in enumerate(frames):
        # Each frame its own camera: motion never skips it, as the first frame of a trigger.
        frame = analyser.decode(FrameInput(index, f"cam-{index}", None, data=data))
        analyser.analyse([frame])
    return (time.process_time() - start) / len(frames) * 1000


def row(name: str, report: QualityReport, cpu_ms: float, plain_ms: float) -> str:
    day, night, both = report.recall("day"), report.recall("night"), report.recall()
    return (
        f"{name:24} {day[0]:>3}/{day[1]:<3} {night[0]:>3}/{night[1]:<3} {both[0]:>3}/{both[1]:<3} "
        f"{both[0] / max(1, both[1]):5.2f}  {report.false_frames:>3}/{len(report.blanks):<3} "
        f"{report.false_frames_at(ALERT_CONFIDENCE):>5}  {report.wrong_category:>5}  "
        f"{cpu_ms:8.0f} {cpu_ms / plain_ms:6.2f}"
    )


def details(report: QualityReport) -> None:
    for frame in report.frames:
        if not frame.found or frame.category != "animal":
            state = "missed" if not frame.found else f"found as {frame.category}"
            print(
                f"    {frame.name}: {state} ({'night' if frame.night else 'day'}, best IoU {frame.best_iou})"
            )
    for blank in report.blanks:
        if blank.boxes:
            print(f"    {blank.name}: {', '.join(f'{c} {conf:.2f}' for c, conf in blank.boxes)}")
    print(f"    confusion (MegaDetector -> ours): {dict(sorted(report.confusion.items()))}")


def int8_models(shared: Path, folder: Path, silu_int8: bool = False) -> Path:
    """The shared models (symlinks) and YOLOX-nano quantised now by ``yaguar models quantize``'s own
    code (``silu_int8``: with ``--silu-int8``), calibrated as its manifest says (the shared camera-trap
    and jaguar frames), in ``folder``. Its tolerance is off: the yardstick, not the quantiser's own
    check, judges it here."""
    folder.mkdir(exist_ok=True)
    for path in (shared / "models").iterdir():
        (folder / path.name).symlink_to(path)
    calibration = [shared / "images" / "camera-trap", shared / "images" / "jaguar"]
    reference = shared / "reference" / "megadetector_v5_boxes.json"
    made = quantize_detector(
        find_manifest("yolox_nano"),
        shared / "models",
        calibration,
        folder,
        reference,
        shared / "images",
        1.0,
        silu_int8=silu_int8,
    )
    print(
        f"int8 YOLOX-nano{' --silu-int8' if silu_int8 else ''} made in {folder}: "
        f"{len(made.float_convs)} convs kept float; its own check "
        f"{made.int8_score.found}/{made.int8_score.frames} frames, float {made.float_score.found}/"
        f"{made.float_score.frames}"
    )
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", action="append", choices=sorted(SETTINGS), help="named setting(s)")
    parser.add_argument("--config", action="append", default=[], help="a setting as JSON overrides")
    parser.add_argument("--frames", type=int, default=6, help="12 MP frames for the CPU cost")
    parser.add_argument("--verbose", action="store_true", help="list misses and false boxes")
    parser.add_argument(
        "--int8", action="store_true", help="add the station with YOLOX-nano int8, quantised for this run"
    )
    parser.add_argument(
        "--silu-int8", action="store_true", help="with --int8: also YOLOX-nano quantised with --silu-int8"
    )
    parser.add_argument(
        "--keep-int8", type=Path, help="with --int8: make the int8 models in this folder, kept"
    )
    args = parser.parse_args()
    shared = shared_data_dir()
    if shared is None:
        print("shared data (../shared/data or YAGUAR_DATA_DIR) is not present: nothing to measure")
        return 1
    chosen = {name: SETTINGS[name] for name in args.setting or ([] if args.config else SETTINGS)}
    chosen.update({f"config {i + 1}": json.loads(text) for i, text in enumerate(args.config)})
    chosen = {"plain": SETTINGS["plain"], **chosen}  # the reference of the CPU ratio, always first
    with tempfile.TemporaryDirectory(prefix="yaguar-quality-") as tmp:
        frames = [p.read_bytes() for p in make_frames(shared / "images", Path(tmp), args.frames)]
    int8_dir = tempfile.TemporaryDirectory(prefix="yaguar-int8-")
    for label, silu in (("int8", False), ("int8 --silu-int8", True)):
        if args.int8 and (args.silu_int8 or not silu):
            where = Path(args.keep_int8 or int8_dir.name) / label.replace(" --", "_").replace("-", "_")
            folder = str(int8_models(shared, where, silu))
            chosen[f"station, {label}"] = {
                "detector": "yolox_nano_int8",
                "model_dir": folder,
                "manifest_dir": folder,
            }
    print(
        f"reference: MegaDetector v5 boxes, IoU >= 0.3; blanks: reference frames with the boxes cut "
        f"away, the same whole with the boxes painted over, the empty frame, scream.jpg; CPU: "
        f"{len(frames)} frames of 12 MP, same run"
    )
    print(
        f"{'setting':24} {'day':>7} {'night':>7} {'all':>7} {'recall':>5}  {'blanks':>7} "
        f"{'>=0.5':>5}  {'wrong':>5}  {'CPU ms':>8} {'ratio':>6}"
    )
    plain_ms = 0.0
    for name, overrides in chosen.items():
        config = PipelineConfig.model_validate({**overrides, "enabled": True})
        analyser = Analyser(config)
        report = score_analyser(analyser, name)
        cpu = cpu_ms_per_frame(analyser, frames)
        plain_ms = plain_ms or cpu
        print(row(name, report, cpu, plain_ms), flush=True)
        if args.verbose:
            details(report)
    int8_dir.cleanup()
    print(
        "day/night/all: MegaDetector animal frames found; blanks: blank frames with any box written "
        f"(of all blanks); >=0.5: of them, at the alert threshold {ALERT_CONFIDENCE}; wrong: matched boxes "
        "of another category than MegaDetector's; CPU ms: decode + analysis per 12 MP frame; ratio: to plain"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
