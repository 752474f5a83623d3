"""``yaguar detect PATH...``: the station's analysis over a folder or an SD card dump, offline.

Writes MegaDetector batch output (format 1.6, paths relative to the folder given, or with several to
their common parent) and a CSV with one row per box (or per image without boxes). Decoding runs in
threads ahead of inference; a bad image becomes a ``failure`` entry with its one-line reason, and the
run goes on.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from datetime import tzinfo
from pathlib import Path

from .analyser import Analyser
from .backends import BackendError
from .batch_output import validate_batch_output
from .checkpoint import CheckpointError
from .config import PipelineConfig
from .detect_run import Runner, RunSettings, find_media, videos_path
from .look import THOROUGH_CLOSER, thorough
from .look import parse_size as _size
from .manifest import ManifestError
from .models_cli import default_model_dir
from .sdcard import parse_zone

log = logging.getLogger(__name__)

# Offline, pictures come from any camera: trail cameras sold as "64 MP" write 9216x6912 interpolated
# JPEGs. The station's 50 MP door stays; here only the header check is wider. Memory stays bounded:
# JPEGs are decoded reduced (1/8 first, never finer than 1/2 at this size), other types are rare.
DETECT_MAX_PIXELS = 100_000_000


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "detect", help="detect animals, people and vehicles in folders of pictures and videos"
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, help="picture or video files, or folders (searched recursively)"
    )
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
    parser.add_argument(
        "--closer",
        type=_size,
        default=THOROUGH_CLOSER,
        metavar="WxH",
        help="input size of the closer look on frames the first pass is unsure of (default "
        f"{THOROUGH_CLOSER[0]}x{THOROUGH_CLOSER[1]}: offline, thoroughness before speed; 0x0: none)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    # SD cards and videos (issue 16)
    parser.add_argument(
        "--timezone", default=None, help="where camera clocks are when EXIF has no offset (default UTC)"
    )
    parser.add_argument(
        "--camera-timezone", action="append", metavar="FOLDER=ZONE", help="time zone of one camera folder"
    )
    parser.add_argument(
        "--sequence-gap", type=float, default=60.0, help="seconds between pictures that start a new sequence"
    )
    parser.add_argument("--video-fps", type=float, default=1.0, help="video frames analysed per second")
    parser.add_argument("--clips", type=Path, default=None, help="write MP4 clips around detections here")
    parser.add_argument("--checkpoint-every", type=int, default=1000, help="save progress every N images")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.set_defaults(func=run_detect)


def _zones(args: argparse.Namespace) -> tuple[tzinfo | None, dict[str, tzinfo]]:
    default = parse_zone(args.timezone) if args.timezone else None
    cameras: dict[str, tzinfo] = {}
    for item in args.camera_timezone or []:
        folder, sep, zone = item.rpartition("=")
        if not sep or not folder:
            raise ValueError(f"--camera-timezone {item!r}: write FOLDER=ZONE, e.g. 100RECNX=America/Bogota")
        cameras[folder.strip("/")] = parse_zone(zone)
    return default, cameras


def check_writable(path: Path) -> None:
    """Make the output's folder and try writing in it, before hours of analysis rather than after;
    ValueError with the reason (a read-only card, a folder name that is a file)."""
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder (name a file, e.g. {path / 'results.json'})")
    for folder in (path.parent, *path.parent.parents):
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"cannot write {path}: {folder} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".yaguar-probe-"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot write {path} ({exc.strerror or exc})") from None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def run_detect(args: argparse.Namespace) -> int:
    config = PipelineConfig(
        enabled=True,
        backend=args.backend,
        model_dir=args.model_dir or default_model_dir(),  # as `yaguar models` fetches and imports
        detector=args.detector,
        classifiers=[] if args.no_classify else (args.classifier or PipelineConfig().classifiers),
        detection_threshold=args.threshold,
        region=args.region,
        skip_without_motion=args.motion,
        batch_size=max(1, args.batch_size),
        look=thorough(args.closer),
        max_pixels=DETECT_MAX_PIXELS,
    )
    try:
        zone, camera_zones = _zones(args)
        if not args.video_fps > 0:
            raise ValueError("--video-fps must be above 0")
        missing = [str(p) for p in args.paths if not p.exists()]
        if missing:  # a card not mounted, or a typo: say so rather than analyse nothing
            raise ValueError(f"no such file or folder: {', '.join(missing)}")
        for path in (args.output, args.csv or args.output.with_suffix(".csv")):
            check_writable(path)
        analyser = Analyser(config)
    except (ManifestError, BackendError, ValueError) as exc:
        log.error("%s", exc)
        print(f"yaguar detect: {exc}")
        return 2
    pictures, videos = find_media(args.paths)
    if not pictures and not videos:
        print(
            "yaguar detect: no pictures (JPEG, PNG, TIFF, BMP, GIF, WebP, HEIC) or videos (MP4, AVI, MOV, "
            "MKV) under the given paths"
        )
        return 1
    settings = RunSettings(
        paths=list(args.paths),
        output=args.output,
        csv_path=args.csv or args.output.with_suffix(".csv"),
        use_motion=args.motion,
        batch_size=config.batch_size,
        decode_threads=config.decode_threads(),
        gap_s=args.sequence_gap,
        zone=zone,
        camera_zones=camera_zones,
        video_every_s=1.0 / args.video_fps,
        clips_dir=args.clips,
        checkpoint_every=max(1, args.checkpoint_every),
        resume=args.resume,
        progress=not args.no_progress,
    )
    try:
        totals = Runner(analyser, settings).run()
    except CheckpointError as exc:
        print(f"yaguar detect: {exc}")
        return 2
    problems = validate_batch_output(json.loads(args.output.read_text(encoding="utf-8")))
    for problem in problems:
        log.error("output does not validate: %s", problem)
    where = f"{args.output} and {settings.csv_path}"
    if totals.videos:
        where += f" (videos: {videos_path(args.output)})"
    counts = _count(len(pictures), "image") + (f", {_count(len(videos), 'video')}" if videos else "")
    print(f"{counts}, {totals.failures} could not be read; results in {where}")
    return 0 if not problems else 1
