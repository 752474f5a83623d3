"""``yaguar models quantize NAME --calibration FOLDER``: a detector in int8 (see ``quantize``), scored
against MegaDetector's boxes from the shared data where they are at hand, or a classifier in int8
(see ``quantize_classifier``), scored against the float model on held-out photos; written beside the
original with its manifest and model card, or refused with the numbers."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from yaguar.durable import atomic_write
from yaguar.paths import shared_data_dir

from .backends.base import BackendError
from .manifest import Manifest, ManifestError, find_manifest
from .quantize import QuantizeError, Result, quantize_detector
from .quantize_classifier import ClassifierResult, numbers, quantize_classifier

if TYPE_CHECKING:  # torch is an optional extra: quantize_finetune is imported when --finetune asks
    from .quantize_finetune import Tuned

log = logging.getLogger(__name__)


def add_command(sub: argparse._SubParsersAction) -> None:
    quantize = sub.add_parser(
        "quantize",
        help="make an int8 copy of a detector or classifier, calibrated on your own camera-trap photos",
        description="Quantise a detector or a species classifier to int8 (onnxruntime static "
        "quantisation, QDQ). The copy is kept only if it finds as many animals (a detector) or names "
        "the same species (a classifier) as the original, within --tolerance.",
    )
    quantize.add_argument(
        "name", help="the model's manifest name (e.g. yolox_nano) or a .toml path (e.g. a trained classifier)"
    )
    quantize.add_argument(
        "--calibration",
        type=Path,
        nargs="+",
        required=True,
        help="folders of real camera-trap photos (JPEG, searched with their sub-folders; for a "
        "classifier, photos in species folders also score its accuracy)",
    )
    quantize.add_argument(
        "--out", type=Path, default=None, help="where to write it (default: beside the original)"
    )
    quantize.add_argument(
        "--tolerance",
        type=float,
        default=0.02,
        help="largest drop accepted: a detector's recall; a classifier's top-1 agreement with the "
        "original and its accuracy on photos in species folders (default 0.02)",
    )
    quantize.add_argument(
        "--max-frames",
        type=int,
        default=64,
        help="calibration photos used at most (a classifier reads twice as many: every other one is held "
        "out to score the copy)",
    )
    quantize.add_argument(
        "--crop-with",
        default=None,
        metavar="DETECTOR",
        help="classifier: cut each photo's animal out with this detector first, as training does "
        "(e.g. yolox_nano); default: whole photos",
    )
    quantize.add_argument(
        "--silu-int8",
        action="store_true",
        help="detector: run its SiLUs and the ops between its convs in int8 too, faster on onnxruntime "
        "(for the OpenCL backend leave it off: its int8 kernels match onnxruntime only on the default graph)",
    )
    # quantisation-aware fine-tuning (quantize_finetune.py)
    quantize.add_argument(
        "--finetune",
        type=Path,
        nargs="+",
        default=None,
        metavar="FOLDER",
        help="detector: first fine-tune its weights so that the int8 copy answers as the original does "
        "(the original teaches, no labels needed), on the photos in these folders: use photos other than "
        "the ones you judge it on. Needs torch (pip install 'yaguar[megadetector]'). On our 18 photos it did "
        "not bring YOLOX-nano's recall back (engine/README.md)",
    )
    quantize.add_argument(
        "--finetune-minutes", type=float, default=8.0, help="with --finetune: minutes of training at most"
    )
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
        if args.crop_with and manifest.kind != "classifier":
            raise QuantizeError(f"--crop-with is for classifiers; {manifest.ident} is a {manifest.kind}")
        if args.silu_int8 and manifest.kind != "detector":
            raise QuantizeError(f"--silu-int8 is for detectors; {manifest.ident} is a {manifest.kind}")
        out = args.out or manifest.model_path(model_dir).parent
        tuned = _finetuned(args, manifest, model_dir) if args.finetune else None
        result: Result | ClassifierResult
        if manifest.kind == "classifier":
            result = quantize_classifier(
                manifest,
                model_dir,
                args.calibration,
                out,
                args.tolerance,
                args.max_frames,
                args.crop_with,
                extra,
            )
        else:
            result = quantize_detector(
                manifest,
                model_dir,
                args.calibration,
                out,
                reference,
                images,
                args.tolerance,
                args.max_frames,
                args.silu_int8,
                tuned.model if tuned else None,
            )
            if tuned:
                _note_on_card(result.card, tuned, args.finetune)
    except (QuantizeError, ManifestError, BackendError, OSError) as exc:
        log.error("models quantize: %s", exc)
        print(f"yaguar models quantize: {exc}")
        return 1
    if isinstance(result, ClassifierResult):
        print(
            f"{result.manifest.ident}: {numbers(result.agreement)} on {result.agreement.images} held-out "
            f"photos; {result.float_ms / result.int8_ms:.2f}x its speed on onnxruntime\n"
            f"  model {result.model}\n  card  {result.card}"
        )
        return 0
    f, q = result.float_score, result.int8_score
    print(
        f"{result.manifest.ident}: {q.found} of {q.frames} frames found (the original: {f.found}); "
        f"{result.float_ms / result.int8_ms:.2f}x its speed on onnxruntime\n"
        f"  model {result.model}\n  card  {result.card}\n"
        f"  scored on {result.reference}"
    )
    return 0


def _finetuned(args: argparse.Namespace, manifest: Manifest, model_dir: Path) -> Tuned:
    """``--finetune``: the detector's weights fine-tuned for int8 (quantize_finetune.py, which needs torch)."""
    if manifest.kind != "detector":
        raise QuantizeError(f"--finetune is for detectors; {manifest.ident} is a {manifest.kind}")
    if args.finetune_minutes <= 0:
        raise QuantizeError("--finetune-minutes must be more than 0")
    try:
        from .quantize_finetune import finetuned
    except ImportError as exc:
        raise QuantizeError(f"--finetune needs torch ({exc}): pip install 'yaguar[megadetector]'") from exc
    print(f"Fine-tuning {manifest.ident} for int8 on the photos in {', '.join(map(str, args.finetune))} "
          f"(at most {args.finetune_minutes:g} minutes)...")  # fmt: skip
    return finetuned(
        manifest,
        model_dir,
        args.calibration,
        args.finetune,
        args.max_frames,
        args.silu_int8,
        args.finetune_minutes,
    )


def _note_on_card(card: Path, tuned: Tuned, training: list[Path]) -> None:
    from .quantize_finetune import card_note

    atomic_write(card, card.read_bytes() + b"\n" + card_note(tuned, training).encode())
