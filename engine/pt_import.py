"""``yaguar models import FILE.pt``: a YOLOv5 or MegaDetector v5 checkpoint becomes an ONNX file and a
manifest in the model folder, offline, with the ONNX export code of the ``yolov5`` package (and of
``ultralytics`` for YOLOv8-and-later checkpoints: MegaDetector v6 / v1000).

Nothing half-written is left: the ONNX file and its manifest are made in a temporary folder inside the
model folder and moved into place only when both are complete; any failure removes that folder.

A .pt file is a Python pickle and loading one can run code: import only checkpoints you trust (the
MegaDetector releases, your own training). torch and yolov5 are the optional extra
``yaguar[megadetector]``; the rest of the engine never imports them.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.machinery
import json
import os
import re
import shutil
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .manifest import MANIFEST_DIR, Manifest, ManifestError, file_sha256, load_manifest

MEGADETECTOR_LABELS = ["animal", "person", "vehicle"]
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
EXTRA_HINT = (
    "install the optional extra: pip install 'yaguar[megadetector]' && "
    "pip install --no-deps yolov5==7.0.14 ultralytics==8.4.190 (see README)"
)
_PICKLE_PROTOCOL_2_OR_MORE = 0x80  # first byte of a pickle written with protocol 2 or later
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format since torch 1.6


class CheckpointImportError(ManifestError):
    """The checkpoint cannot become a model; the message is one line that says why."""


def default_name(checkpoint: Path) -> str:
    """A model name from the file name: md_v5a.0.0.pt -> md_v5a.0.0."""
    name = re.sub(r"[^a-z0-9_.-]+", "_", checkpoint.stem.lower()).strip("_.-")
    return name[:64] or "imported"


def label_table(labels: list[str]) -> str:
    """MegaDetector's three classes keep their categories; any other model's labels are read as COCO's
    (a YOLOv5 trained on COCO names its classes as COCO does; a label COCO lacks needs --category)."""
    return "megadetector" if labels == MEGADETECTOR_LABELS else "coco"


def import_checkpoint(
    checkpoint: Path,
    model_dir: Path,
    name: str | None = None,
    size: int | None = None,
    categories: dict[str, str] | None = None,
    replace: bool = False,
) -> Manifest:
    """Convert ``checkpoint`` and write ``<name>.onnx`` and ``<name>.toml`` into ``model_dir``."""
    with _pil_open_kept():
        return _import_checkpoint(checkpoint, model_dir, name, size, categories, replace)


@contextlib.contextmanager
def _pil_open_kept() -> Iterator[None]:
    """ultralytics replaces ``PIL.Image.open`` for the whole process when it is imported (with a HEIC
    fallback that imports ``pi_heif``, which we do not install): put ours back, so that a process that
    imported a checkpoint still reads pictures as before."""
    from PIL import Image

    original = Image.open
    try:
        yield
    finally:
        Image.open = original


def _import_checkpoint(
    checkpoint: Path,
    model_dir: Path,
    name: str | None,
    size: int | None,
    categories: dict[str, str] | None,
    replace: bool,
) -> Manifest:
    name = name or default_name(checkpoint)
    if not NAME_PATTERN.match(name):
        raise CheckpointImportError(
            f"model name {name!r}: use lower-case letters, digits, '_', '.', '-' (at most 64)"
        )
    if (MANIFEST_DIR / f"{name}.toml").exists():
        raise CheckpointImportError(f"{name!r} is a built-in model's name; choose another with --name")
    targets = [model_dir / f"{name}.onnx", model_dir / f"{name}.toml"]
    if not replace and any(t.exists() for t in targets):
        raise CheckpointImportError(f"{name!r} already exists in {model_dir}; use --replace to overwrite it")
    _check_torch_file(checkpoint)
    torch, yolo = _yolov5_modules()
    ckpt, model = _load_yolo(checkpoint, torch, yolo)
    ultralytics = _is_ultralytics(model)
    labels = _labels(model)
    stride = int(max(model.stride))
    size = size or _trained_size(ckpt, labels) or 640
    if size % stride:
        raise CheckpointImportError(f"--size {size} is not a multiple of the model's stride {stride}")
    model_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".import-{name}-", dir=model_dir))
    try:
        if ultralytics:
            onnx_path = _export_ultralytics(checkpoint, size, work / f"{name}.pt")
        else:
            onnx_path = _export(model, size, work / f"{name}.pt", torch, yolo)
        text = manifest_toml(
            name,
            checkpoint,
            (file_sha256(checkpoint), file_sha256(onnx_path)),
            labels,
            size,
            categories or {},
            "yolov8" if ultralytics else "yolov5",
        )
        manifest_path = work / f"{name}.toml"
        manifest_path.write_text(text, encoding="utf-8")
        load_manifest(manifest_path)  # the manifest we wrote must be one the engine reads
        os.replace(onnx_path, targets[0])
        os.replace(manifest_path, targets[1])  # last: the model exists for the engine from here on
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return load_manifest(targets[1])


def _check_torch_file(path: Path) -> None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise CheckpointImportError(f"cannot read {path}: {exc.strerror}") from None
    if head != _ZIP_MAGIC and (not head or head[0] != _PICKLE_PROTOCOL_2_OR_MORE):
        raise CheckpointImportError(f"{path.name} is not a PyTorch checkpoint (not a torch.save file)")


def _yolov5_modules() -> tuple[Any, types.SimpleNamespace]:
    """torch and the parts of yolov5 that build, load and export a model."""
    try:
        torch = importlib.import_module("torch")
        _ensure_torchvision_importable()
        return torch, types.SimpleNamespace(
            yolo=importlib.import_module("yolov5.models.yolo"),
            export=importlib.import_module("yolov5.export"),
        )
    except ImportError as exc:
        raise CheckpointImportError(
            f"importing a .pt file needs {exc.name or 'torch'}: {EXTRA_HINT}"
        ) from None


def _ensure_torchvision_importable() -> None:
    """yolov5 imports torchvision at module level, for training and NMS code that ONNX export never runs.
    PyPI's torchvision for Linux is built against CUDA torch and cannot load beside the CPU torch (its
    operators fail to register). When it cannot be imported, an empty stand-in package is registered
    whose every class raises a clear error if any code ever calls it."""
    try:
        importlib.import_module("torchvision")
        return
    except (ImportError, RuntimeError):
        for key in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[key]

    def unavailable(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("torchvision is not usable beside this torch; yaguar only exports models")

    class Unavailable(types.ModuleType):
        def __getattr__(self, attr: str) -> type:
            if attr.startswith("__"):
                raise AttributeError(attr)
            return type(attr, (), {"__init__": unavailable, "__call__": unavailable})

    for full in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional",
                 "torchvision.ops", "torchvision.datasets"):  # fmt: skip
        module = Unavailable(full)
        module.__path__ = []
        module.__spec__ = importlib.machinery.ModuleSpec(full, None, is_package=True)
        sys.modules[full] = module
        parent, _, leaf = full.rpartition(".")
        if parent:
            setattr(sys.modules[parent], leaf, module)


def _is_ultralytics(model: Any) -> bool:
    """YOLOv8 and later (MegaDetector v6, v1000) are the ultralytics package's classes."""
    return type(model).__module__.startswith("ultralytics")


def _load_yolo(path: Path, torch: Any, yolo: types.SimpleNamespace) -> tuple[dict[str, Any], Any]:
    """The checkpoint's model in float32 eval mode, as yolov5's attempt_load prepares it, without
    its download fallback (offline) and with torch's full unpickler (weights_only=False: a YOLOv5
    checkpoint pickles its modules)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        raise CheckpointImportError(f"{path.name} cannot be loaded by torch: {_one_line(exc)}") from None
    entry = ckpt.get("ema") or ckpt.get("model") if isinstance(ckpt, dict) else None
    detect = yolo.yolo.Detect
    if entry is None or not hasattr(entry, "modules"):
        what = type(ckpt).__name__ if not isinstance(ckpt, dict) else f"dict with keys {sorted(ckpt)[:6]}"
        raise CheckpointImportError(f"{path.name} is not a YOLO checkpoint: it holds a {what}")
    if not any(type(m).__name__ == "Detect" for m in entry.modules()):
        raise CheckpointImportError(f"{path.name} is not a YOLO detector: its model has no Detect layer")
    if _is_ultralytics(entry):
        return ckpt, entry  # the ultralytics exporter prepares it itself
    model = entry.float()
    if hasattr(model, "fuse"):
        model = model.fuse()
    model.eval()
    for module in model.modules():  # what attempt_load does for checkpoints of older yolov5/torch
        if isinstance(module, detect) and not isinstance(module.anchor_grid, list):
            delattr(module, "anchor_grid")
            module.anchor_grid = [torch.zeros(1)] * module.nl
        if isinstance(module, torch.nn.Upsample) and not hasattr(module, "recompute_scale_factor"):
            module.recompute_scale_factor = None
    if not hasattr(model, "stride"):
        model.stride = torch.tensor([32.0])
    return ckpt, model


def _labels(model: Any) -> list[str]:
    names = getattr(model, "names", None)
    if isinstance(names, dict):
        return [str(names[i]) for i in sorted(names)]
    if isinstance(names, list | tuple):
        return [str(n) for n in names]
    return [str(i) for i in range(int(model.nc))]


def _trained_size(ckpt: dict[str, Any], labels: list[str]) -> int | None:
    """The image size the checkpoint was trained at (train.py keeps its options); MegaDetector v5: 1280."""
    opt = ckpt.get("opt") or ckpt.get("train_args")  # yolov5's train.py; ultralytics
    size = opt.get("imgsz") if isinstance(opt, dict) else getattr(opt, "imgsz", None)
    if isinstance(size, list | tuple) and size:
        size = size[0]
    if isinstance(size, int) and size > 0:
        return size
    return 1280 if labels == MEGADETECTOR_LABELS else None


@contextlib.contextmanager
def _torchscript_onnx_exporter(torch: Any) -> Iterator[None]:
    """yolov5 7.0 calls torch.onnx.export as torch 1.x had it; newer torch defaults to the dynamo
    exporter (opset 18, onnxscript). The TorchScript exporter gives the opset 12 graph that yolov5
    was written for and both of the engine's backends run."""
    original = torch.onnx.export
    torch.onnx.export = functools.partial(original, dynamo=False)
    try:
        yield
    finally:
        torch.onnx.export = original


def _export(model: Any, size: int, stem: Path, torch: Any, yolo: types.SimpleNamespace) -> Path:
    for module in model.modules():  # export.py's settings for an ONNX export
        if isinstance(module, yolo.yolo.Detect):
            module.inplace, module.dynamic, module.export = False, False, True
    image = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        model(image)  # a dry run, as export.py does: builds the anchor grids
    with _torchscript_onnx_exporter(torch):
        # export_onnx is yolov5's own, wrapped by its try_export: it logs a failure and returns None
        onnx_path, _ = yolo.export.export_onnx(model, image, stem, 12, dynamic=False, simplify=False)
    if onnx_path is None or not Path(onnx_path).is_file():
        raise CheckpointImportError(f"yolov5's ONNX export failed for {stem.stem} (its log above says why)")
    return Path(onnx_path)


def _export_ultralytics(checkpoint: Path, size: int, copy: Path) -> Path:
    """YOLOv8 and later with the ultralytics exporter; it writes beside the checkpoint, so it works on
    a copy in the temporary folder."""
    shutil.copyfile(checkpoint, copy)
    yolo_class = importlib.import_module("ultralytics").YOLO
    try:
        result = yolo_class(str(copy)).export(
            format="onnx", imgsz=size, opset=12, simplify=False, dynamic=False, half=False
        )
    except Exception as exc:  # the exporter raises many types; the user needs the reason, in one line
        raise CheckpointImportError(f"ultralytics' ONNX export failed: {_one_line(exc)}") from None
    if not result or not Path(result).is_file():
        raise CheckpointImportError(f"ultralytics' ONNX export failed for {checkpoint.name}")
    return Path(result)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


# A TOML value: JSON's strings, numbers and lists of strings are valid TOML.
_q = functools.partial(json.dumps, ensure_ascii=False)


def manifest_toml(
    name: str,
    checkpoint: Path,
    sha256s: tuple[str, str],
    labels: list[str],
    size: int,
    categories: dict[str, str],
    output_format: str = "yolov5",
) -> str:
    """The manifest of an imported model; ``sha256s``: the checkpoint's and the ONNX file's."""
    checkpoint_sha256, onnx_sha256 = sha256s
    table = label_table(labels)
    family = "YOLOv5" if output_format == "yolov5" else "Ultralytics YOLO"
    what = f"MegaDetector ({family}; animal/person/vehicle)" if table == "megadetector" else family
    lines = [
        f"# Imported by `yaguar models import` from {checkpoint.name} (sha256 {checkpoint_sha256}).",
        f"name = {_q(name)}",
        f"version = {_q(checkpoint_sha256[:12])}",
        'kind = "detector"',
        f"description = {_q(f'{what}, {len(labels)} classes, {size}x{size}, imported from {checkpoint.name}')}",
        f"file = {_q(name + '.onnx')}",
        f"sha256 = {_q(onnx_sha256)}",
        f"sha256_from = {_q('computed here at import from ' + checkpoint.name)}",
        f"score_threshold = {0.2 if table == 'megadetector' else 0.3}",
        "nms_iou = 0.45",
        "",
        "[input]",
        'name = "images"',
        f"width = {size}",
        f"height = {size}",
        'layout = "NCHW"',
        'colour = "RGB"',
        'dtype = "float32"',
        'resize = "letterbox"',
        'align = "centre"',
        "scale = 0.00392156862745098",
        "",
        "[output]",
        f"format = {_q(output_format)}",
        "",
        "[labels]",
        f"names = {_q(labels)}",
        f"table = {_q(table)}",
    ]
    if categories:
        lines += ["", "[labels.categories]", *[f"{_q(k)} = {_q(v)}" for k, v in sorted(categories.items())]]
    return "\n".join(lines) + "\n"
