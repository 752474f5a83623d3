"""``yaguar models quantize NAME --calibration FOLDER``: a detector in int8 (see ``quantize``), scored
against MegaDetector's boxes from the shared data where they are at hand, written beside the other
models with its manifest and model card, or refused with the numbers."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from yaguar.paths import shared_data_dir

from .backends.base import BackendError
from .manifest import ManifestError, find_manifest
from .quantize import QuantizeError, quantize_detector

log = logging.getLogger(__name__)


def add_command(sub: argparse._SubParsersAction) -> None:
    quantize = sub.add_parser(
        "quantize",
        help="make an int8 copy of a detector, calibrated on your own camera-trap photos",
        description="Quantise a detector to int8 (onnxruntime static quantisation, QDQ). The copy is "
        "kept only if it finds as many animals as the original, within --tolerance.",
    )
    quantize.add_argument("name", help="the detector's manifest name (e.g. yolox_nano) or a .toml path")
    quantize.add_argument(
        "--calibration",
        type=Path,
        nargs="+",
        required=True,
        help="folders of real camera-trap photos (JPEG, searched with their sub-folders)",
    )
    quantize.add_argument(
        "--out", type=Path, default=None, help="where to write it (default: the model folder)"
    )
    quantize.add_argument(
        "--tolerance", type=float, default=0.02, help="largest recall drop accepted (default 0.02)"
    )
    quantize.add_argument("--max-frames", type=int, default=64, help="calibration photos used at most")
    quantize.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="MegaDetector boxes to score against (default: the shared data's, when present)",
    )
    quantize.add_argument(
        "--reference-images", type=Path, default=None, help="folder holding the reference's photos"
    )


def run(args: argparse.Namespace, model_dir: Path, extra: list[Path] | None) -> int:
    shared = shared_data_dir()
    reference = args.reference or (shared / "reference" / "megadetector_v5_boxes.json" if shared else None)
    images = args.reference_images or (shared / "images" if shared else None)
    if not 0 <= args.tolerance < 1:
        print("yaguar models quantize: --tolerance must be between 0 and 1")
        return 2
    try:
        manifest = find_manifest(args.name, extra)
        where = ", ".join(map(str, args.calibration))
        print(f"Quantising {manifest.ident} on the photos in {where} (about a minute)...")
        result = quantize_detector(
            manifest,
            model_dir,
            args.calibration,
            args.out or model_dir,
            reference,
            images,
            args.tolerance,
            args.max_frames,
        )
    except (QuantizeError, ManifestError, BackendError, OSError) as exc:
        log.error("models quantize: %s", exc)
        print(f"yaguar models quantize: {exc}")
        return 1
    f, q = result.float_score, result.int8_score
    print(
        f"{result.manifest.ident}: {q.found} of {q.frames} frames found (the original: {f.found}); "
        f"{result.float_ms / result.int8_ms:.2f}x its speed on onnxruntime\n"
        f"  model {result.model}\n  card  {result.card}\n"
        f"  scored on {result.reference}"
    )
    return 0
