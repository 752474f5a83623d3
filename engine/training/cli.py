"""``yaguar train classifier FOLDER... --name NAME --out DIR``: a species classifier from folders of
photos (one sub-folder per species), exported for the station with its manifest and model card."""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from ..backends.base import BackendError
from ..manifest import ManifestError
from ..models_cli import default_model_dir
from .dataset import MIN_PER_CLASS, TrainingError, missing_extra

if TYPE_CHECKING:
    from .trainer import TrainResult

log = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a species classifier on the station")
    sub = parser.add_subparsers(dest="train_command", required=True)
    cls = sub.add_parser(
        "classifier",
        help="folders with one sub-folder per species -> one ONNX model + manifest + model card",
    )
    cls.add_argument(
        "folders", nargs="+", type=Path, help="training folders (iNaturalist, SD crops, reviews)"
    )
    cls.add_argument("--name", required=True, help="model name, e.g. especies_colombia")
    cls.add_argument("--out", type=Path, required=True, help="folder for the model, its manifest and card")
    cls.add_argument("--version", default="", help="model version (default: the UTC time of training)")
    cls.add_argument("--model-dir", type=Path, default=None, help="folder with the backbone and detector")
    cls.add_argument("--manifest-dir", type=Path, default=None, help="extra manifests")
    cls.add_argument("--backbone", default="mobilenet_v2_imagenet_quant", help="backbone manifest")
    cls.add_argument(
        "--detector", default="yolox_nano", help="detector that crops whole photos; 'none' to never crop"
    )
    cls.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "opencl", "auto"])
    cls.add_argument("--region", default="colombia", help="region list the classes are meant for")
    cls.add_argument("--val-fraction", type=float, default=0.25, help="share of photos held back")
    cls.add_argument("--min-photos", type=int, default=MIN_PER_CLASS, help="fewest photos per species")
    cls.add_argument(
        "--threshold",
        type=float,
        default=0.8,
        help="the station names a species only above this probability (the head knows only its classes)",
    )
    cls.add_argument(
        "--leave-one-out", action="store_true", help="also score each photo with a head trained on the rest"
    )
    cls.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    # scikit-learn takes seconds to import: only ``yaguar train`` pays for it, not every ``yaguar`` command
    try:
        from .head import leave_one_out
        from .trainer import TrainOptions, train_classifier
    except ImportError as exc:
        print(f"yaguar train: {missing_extra(exc)}")
        return 2

    options = TrainOptions(
        folders=args.folders,
        out_dir=args.out,
        name=args.name,
        version=args.version,
        model_dir=args.model_dir or default_model_dir(),
        manifest_dirs=[args.manifest_dir] if args.manifest_dir else [],
        backbone=args.backbone,
        detector=None if args.detector == "none" else args.detector,
        backend=args.backend,
        region=args.region,
        val_fraction=args.val_fraction,
        min_per_class=args.min_photos,
        threshold=min(1.0, max(0.0, args.threshold)),
        progress=not args.no_progress,
    )
    try:
        result = train_classifier(options)
    except (TrainingError, ManifestError, BackendError) as exc:
        log.error("training stopped: %s", exc)
        print(f"yaguar train: {exc}")
        return 2
    print_summary(result, args.out)
    if args.leave_one_out:
        embedded = result.embedded
        loo = leave_one_out(embedded.embeddings, embedded.labels, embedded.classes)
        print(f"leave-one-out accuracy / exactitud dejando uno fuera: {loo.accuracy:.1%} of {loo.images}")
    return 0


def print_summary(result: TrainResult, out: Path) -> None:
    validation = result.trained.validation
    dataset = result.embedded.dataset
    counts = dataset.counts()
    skipped = Counter(p.reason for p in dataset.problems)
    print(f"{result.manifest.ident}: {len(counts)} species, {sum(counts.values())} photos")
    if skipped:
        print("skipped / descartadas: " + ", ".join(f"{n} {r}" for r, n in sorted(skipped.items())))
    print(f"{'species':32} {'photos':>6} {'val':>4} {'precision':>9} {'recall':>6}")
    for score in validation.per_class:
        precision, recall = score.shown()
        print(f"{score.name:32} {counts[score.name]:6d} {score.support:4d} {precision:>9} {recall:>6}")
    if any(score.support == 0 for score in validation.per_class):
        print(
            "-: no photo of this species was held back, so it is not scored; add photos / sin fotos de validación"
        )
    print(f"validation accuracy / exactitud: {validation.accuracy:.1%} of {validation.images} held back")
    print(f"model, manifest and card in {out} (card: {result.manifest.name}.card.md)")
