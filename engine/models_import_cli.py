"""``yaguar models import FILE.pt``: the command line of engine/pt_import.py (torch is imported only
when the command runs, so ``yaguar`` itself starts without the optional extra)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .manifest import ManifestError

log = logging.getLogger(__name__)

CATEGORIES = ("animal", "person", "vehicle")


def add_import_command(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "import",
        help="convert a YOLOv5 / YOLOv8 (MegaDetector v5, v6) checkpoint (.pt) to ONNX, offline",
        description="Converts a YOLOv5 / MegaDetector v5 checkpoint (yolov5 package) or a YOLOv8-and-later / "
        "MegaDetector v6 one (ultralytics package) to ONNX and "
        "writes NAME.onnx and NAME.toml into the model folder; then `yaguar detect --detector NAME` runs "
        "it. A .pt file can run code when loaded: import only checkpoints you trust.",
    )
    parser.add_argument("checkpoint", type=Path, help="the .pt file, e.g. md_v5a.0.0.pt")
    parser.add_argument("--name", default=None, help="model name (default: from the file name)")
    parser.add_argument(
        "--size", type=int, default=None, help="input size in pixels (default: the trained size; MD v5: 1280)"
    )
    parser.add_argument(
        "--category",
        action="append",
        default=[],
        metavar="LABEL=CATEGORY",
        help="a class the COCO table does not know, as animal, person or vehicle (repeatable)",
    )
    parser.add_argument("--replace", action="store_true", help="overwrite a model of the same name")


def parse_categories(items: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items:
        label, sep, category = item.rpartition("=")
        if not sep or not label or category not in CATEGORIES:
            raise ValueError(f"--category {item!r}: write LABEL=animal, LABEL=person or LABEL=vehicle")
        found[label] = category
    return found


def run_import(args: argparse.Namespace, model_dir: Path) -> int:
    from .pt_import import import_checkpoint

    try:
        manifest = import_checkpoint(
            args.checkpoint,
            Path(model_dir),
            args.name,
            args.size,
            parse_categories(args.category),
            args.replace,
        )
    except (ManifestError, ValueError) as exc:
        log.error("%s", exc)
        print(f"yaguar models import: {exc}")
        return 2
    labels = ", ".join(manifest.labels.names or [])
    print(
        f"{manifest.ident}: {model_dir / manifest.file} is ready ({manifest.input.width}x"
        f"{manifest.input.height}; classes: {labels[:200]})\n"
        f"  run it with: yaguar detect FOLDER --detector {manifest.name} --model-dir {model_dir}"
    )
    return 0
