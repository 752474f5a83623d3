"""``yaguar detect PATH...``: the station's analysis over a folder or an SD card dump, offline.

Writes MegaDetector batch output (format 1.6, paths relative to the first folder given) and a CSV with
one row per box (or per image without boxes). Decoding runs in threads ahead of inference; a bad image
becomes a ``failure`` entry with its one-line reason, and the run goes on.
"""

from __future__ import annotations

import argparse
import csv
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from yaguar.taxonomy import common_name

from .analyser import Analyser, FrameInput, FrameResult
from .backends import BackendError
from .batch_output import BatchOutput, validate_batch_output
from .config import PipelineConfig
from .decode import DecodeError
from .manifest import ManifestError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg"}
CSV_FIELDS = [
    "file",
    "category",
    "label",
    "confidence",
    "x",
    "y",
    "width",
    "height",
    "species",
    "common_name",
    "species_confidence",
    "classifier",
    "failure",
]


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("detect", help="detect animals, people and vehicles in folders of images")
    parser.add_argument("paths", nargs="+", type=Path, help="image files or folders (searched recursively)")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("yaguar_detections.json"),
        help="MegaDetector-format JSON to write (default: yaguar_detections.json)",
    )
    parser.add_argument("--csv", type=Path, default=None, help="CSV to write (default: beside the JSON)")
    parser.add_argument("--detector", default="yolox_nano", help="detector manifest name or .toml path")
    parser.add_argument(
        "--classifier",
        action="append",
        default=None,
        help="classifier manifest (repeatable); default: the station's classifiers",
    )
    parser.add_argument("--no-classify", action="store_true", help="skip species classification")
    parser.add_argument("--backend", choices=["onnxruntime", "opencl", "auto"], default="onnxruntime")
    parser.add_argument("--model-dir", type=Path, default=None, help="folder with the model files")
    parser.add_argument("--threshold", type=float, default=None, help="minimum box confidence")
    parser.add_argument("--region", default="colombia", help="species list for geofencing ('none': off)")
    parser.add_argument(
        "--motion", action="store_true", help="skip frames where nothing moved (each folder is one camera)"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_detect)


def find_images(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            yield path


def _relative(path: Path, roots: list[Path]) -> str:
    for root in roots:
        if root.is_dir():
            try:
                return path.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                continue
    return path.as_posix()


def _read(path: Path, analyser: Analyser) -> FrameInput:
    frame = FrameInput(path, camera=str(path.parent), burst_id=None)
    try:
        frame.data = path.read_bytes()
    except OSError as exc:
        frame.error = DecodeError("unreadable", f"cannot read ({exc.strerror})")
        return frame
    return analyser.decode(frame)


def run_detect(args: argparse.Namespace) -> int:
    config = PipelineConfig(
        enabled=True,
        backend=args.backend,
        model_dir=args.model_dir,
        detector=args.detector,
        classifiers=[] if args.no_classify else (args.classifier or PipelineConfig().classifiers),
        detection_threshold=args.threshold,
        region=args.region,
        skip_without_motion=args.motion,
        batch_size=max(1, args.batch_size),
    )
    try:
        analyser = Analyser(config)
    except (ManifestError, BackendError, ValueError) as exc:
        log.error("%s", exc)
        print(f"yaguar detect: {exc}")
        return 2
    files = list(find_images(args.paths))
    if not files:
        print("yaguar detect: no JPEG images found under the given paths")
        return 1
    output = BatchOutput(analyser.detector.ident, [c.ident for c in analyser.classifiers])
    csv_path = args.csv or args.output.with_suffix(".csv")
    roots = list(args.paths)
    failures = 0
    with (
        ThreadPoolExecutor(config.decode_threads(), thread_name_prefix="yaguar-decode") as pool,
        open(csv_path, "w", newline="", encoding="utf-8") as csv_file,
        tqdm(total=len(files), unit="img", disable=args.no_progress, desc="detecting") as bar,
    ):
        writer = csv.DictWriter(csv_file, CSV_FIELDS)
        writer.writeheader()
        # map() keeps order (motion state is per camera, in time order) and decodes ahead of inference.
        pending: list[FrameInput] = []
        for frame in pool.map(lambda p: _read(p, analyser), files):
            pending.append(frame)
            if len(pending) >= config.batch_size:
                failures += _emit(analyser.analyse(pending, use_motion=args.motion), roots, output, writer)
                bar.update(len(pending))
                pending = []
        if pending:
            failures += _emit(analyser.analyse(pending, use_motion=args.motion), roots, output, writer)
            bar.update(len(pending))
    output.write(args.output)
    problems = validate_batch_output(output.to_dict())
    for problem in problems:
        log.error("output does not validate: %s", problem)
    print(f"{len(files)} images, {failures} could not be read; results in {args.output} and {csv_path}")
    return 0 if not problems else 1


def _emit(results: list[FrameResult], roots: list[Path], output: BatchOutput, writer: csv.DictWriter) -> int:
    failures = 0
    for result in results:
        name = _relative(Path(str(result.key)), roots)
        if result.state == "failed":
            failures += 1
            log.warning("%s: %s", name, result.note)
            output.add(name, None, failure=result.note or "failed")
            writer.writerow({"file": name, "failure": result.note})
            continue
        output.add(name, result.detections)
        if not result.detections:
            writer.writerow({"file": name, "category": "blank" if result.state == "done" else "skipped"})
        for det in result.detections:
            x, y, w, h = det.bbox
            writer.writerow(
                {
                    "file": name,
                    "category": det.category,
                    "label": det.label,
                    "confidence": det.confidence,
                    "x": x,
                    "y": y,
                    "width": w,
                    "height": h,
                    "species": det.species or "",
                    "common_name": common_name(det.species, "en") if det.species else "",
                    "species_confidence": det.species_confidence
                    if det.species_confidence is not None
                    else "",
                    "classifier": det.classifier or "",
                }
            )
    return failures
