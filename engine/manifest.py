"""Model manifests: a small TOML file that says what an ONNX file is and how to feed and read it.

The engine never guesses a model's conventions: input size, layout, colour order, dtype, normalisation,
output format and labels all come from the manifest, and `check_model` refuses a model file whose
tensors do not match what the manifest promises (a wrong file under the right name).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, model_validator

from yaguar.config import ConfigError, Section, read_toml, validate

from .backends.base import Backend

MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"

DetectorFormat = Literal["yolox", "fastestdet", "yolov5", "yolov8"]
ClassifierFormat = Literal["probabilities", "logits", "quantized"]


class ManifestError(ConfigError):
    """A manifest or its model file is unusable; the message is one line that says why."""


_Strict = Section  # manifest tables refuse unknown keys, as every config section does


class InputSpec(_Strict):
    name: str | None = Field(default=None, description="input tensor name; None: the model's first input")
    width: int = Field(ge=16, le=4096, description="model input width in pixels")
    height: int = Field(ge=16, le=4096, description="model input height in pixels")
    layout: Literal["NCHW", "NHWC"] = Field(description="tensor layout")
    colour: Literal["RGB", "BGR"] = Field(description="channel order the model was trained on")
    dtype: Literal["float32", "uint8"] = Field(description="element type of the input tensor")
    resize: Literal["letterbox", "stretch"] = Field(
        default="letterbox", description="letterbox keeps the aspect ratio and pads; stretch resizes plainly"
    )
    pad_value: int = Field(default=114, ge=0, le=255, description="grey level of letterbox padding")
    align: Literal["top-left", "centre"] = Field(
        default="top-left", description="where a letterboxed image sits: YOLOX top-left, YOLOv5/v8 centre"
    )
    scale: float = Field(default=1.0, gt=0, le=1.0, description="pixel values are multiplied by this first")
    mean: list[float] = Field(default=[0.0, 0.0, 0.0], min_length=3, max_length=3, description="subtracted")
    std: list[float] = Field(default=[1.0, 1.0, 1.0], min_length=3, max_length=3, description="divided by")


class OutputSpec(_Strict):
    format: DetectorFormat | ClassifierFormat = Field(description="how the raw output is decoded")
    strides: list[int] = Field(default=[8, 16, 32], min_length=1, description="YOLOX grid strides")
    quant_scale: float = Field(
        default=1 / 256, gt=0, description="quantized output: probability = value * this"
    )
    label_offset: int = Field(
        default=0,
        ge=-10,
        le=10,
        description="label line = output index minus this: 1 skips an unused output 0; -1 skips a "
        "'background' first line that the model has no output for",
    )


class LabelSpec(_Strict):
    file: str | None = Field(default=None, description="labels file beside the model, one label a line")
    url: str | None = Field(
        default=None, pattern=r"^https?://", description="where `models fetch` gets the file"
    )
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description="checksum of the file")
    sha256_from: str | None = Field(default=None, max_length=200, description="where the sha256 comes from")
    names: list[str] | None = Field(default=None, description="labels inline, in output order")
    table: Literal["coco", "imagenet", "inat", "megadetector", "none"] = Field(
        default="none",
        description="built-in mapping of labels to categories and species (engine/labelmap.py)",
    )
    categories: dict[str, Literal["animal", "person", "vehicle"]] = Field(
        default_factory=dict, description="label -> category, overriding the built-in table"
    )
    species: dict[str, str] = Field(
        default_factory=dict, description="label -> scientific name, overriding the built-in table"
    )

    @model_validator(mode="after")
    def _one_source(self) -> LabelSpec:
        if (self.file is None) == (self.names is None):
            raise ValueError("labels: give exactly one of 'file' or 'names'")
        if self.file is None and (self.url or self.sha256):
            raise ValueError("labels: 'url' and 'sha256' go with 'file'")
        return self


class TaxonEntry(_Strict):
    scientific: str = Field(min_length=3, max_length=120, description="scientific name, the class label")
    es: str = Field(max_length=120, description="Spanish name, as rangers say it")
    en: str = Field(max_length=120, description="English name")
    images: int = Field(ge=0, description="training + validation photos of this class")


class TrainingInfo(_Strict):
    """What a classifier trained by ``yaguar train classifier`` learned from, and how it scored."""

    region: str = Field(description="the region list the classes were chosen for")
    taxa: list[TaxonEntry] = Field(min_length=2, description="the classes, in output order")
    backbone: str = Field(description="name@version of the backbone the head was trained on")
    validation_accuracy: float = Field(ge=0, le=1, description="top-1 accuracy on the held-back split")
    validation_images: int = Field(ge=1, description="photos in the held-back split")
    trained_at: str = Field(description="UTC time of training, ISO 8601")
    sources: list[str] = Field(default_factory=list, description="the training folders")
    card: str | None = Field(default=None, description="model card file beside the model")


class SourceSpec(_Strict):
    """A model published only in another format: `yaguar models fetch` downloads and converts it."""

    format: Literal["tflite"] = Field(description="the published format, converted with tf2onnx")
    url: str = Field(pattern=r"^https?://", description="where the published file is")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="checksum of the published file")
    labels_url: str | None = Field(default=None, pattern=r"^https?://", description="the labels file")
    labels_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class Manifest(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="short model name")
    version: str = Field(min_length=1, max_length=40, description="model version, stored with every result")
    kind: Literal["detector", "classifier"]
    description: str = Field(default="", max_length=500)
    file: str = Field(pattern=r"^[^/\\]+\.onnx$", description="ONNX file name inside the model directory")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description="checksum of the file")
    sha256_from: str | None = Field(
        default=None,
        max_length=200,
        description="where the sha256 comes from, said by `yaguar models verify`: the publisher's page, "
        "or recorded by us from the published file because the publisher gives none",
    )
    url: str | None = Field(
        default=None, pattern=r"^https?://", description="where `yaguar models fetch` gets it"
    )
    export_command: str | None = Field(
        default=None, max_length=1000, description="how to make the ONNX file on a connected machine"
    )
    licence: str | None = Field(default=None, max_length=80)
    input: InputSpec
    output: OutputSpec
    labels: LabelSpec
    score_threshold: float = Field(default=0.3, ge=0, le=1, description="detections below are dropped")
    applies_to: list[str] = Field(
        default_factory=list,
        description="classifier: run only on boxes with these detector labels (e.g. a bird classifier on "
        "'bird'); empty: every animal box",
    )
    nms_iou: float = Field(default=0.45, gt=0, le=1, description="IoU above which same-class boxes merge")
    training: TrainingInfo | None = Field(default=None, description="a classifier trained on the station")
    source: SourceSpec | None = Field(default=None, description="published file to convert at install")
    # The folder the manifest was read from: a trained model's files sit beside its manifest.
    _home: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _format_fits_kind(self) -> Manifest:
        detector_formats = {"yolox", "fastestdet", "yolov5", "yolov8"}
        if (self.kind == "detector") != (self.output.format in detector_formats):
            raise ValueError(f"output format {self.output.format!r} is not a {self.kind} format")
        return self

    @property
    def ident(self) -> str:
        """name@version, the string stored with each detection and event."""
        return f"{self.name}@{self.version}"

    def model_path(self, model_dir: Path) -> Path:
        path = Path(model_dir) / self.file
        if not path.exists() and self._home is not None and (self._home / self.file).exists():
            return self._home / self.file
        return path

    def load_labels(self, model_dir: Path) -> list[str]:
        if self.labels.names is not None:
            return list(self.labels.names)
        path = Path(model_dir) / str(self.labels.file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ManifestError(f"{self.name}: cannot read labels file {path}: {exc.strerror}") from None
        return [line.strip() for line in lines if line.strip()]


def load_manifest(path: Path) -> Manifest:
    """Read and validate one manifest; raise ManifestError with a one-line reason."""
    path = Path(path)
    try:
        data = read_toml(path, what="manifest")
    except ConfigError as exc:
        raise ManifestError(str(exc)) from None
    try:
        manifest = validate(Manifest, data)
    except ConfigError as exc:
        # one line naming the manifest: the front ends show it beside other models' lines
        raise ManifestError(f"manifest {path.name} is invalid: {'; '.join(exc.problems)}") from None
    manifest._home = path.resolve().parent
    return manifest


def find_manifest(name: str, manifest_dirs: list[Path] | None = None) -> Manifest:
    """A manifest by model name (file ``<name>.toml``) or by path."""
    if name.endswith(".toml"):
        return load_manifest(Path(name))
    for folder in [*(manifest_dirs or []), MANIFEST_DIR]:
        candidate = Path(folder) / f"{name}.toml"
        if candidate.is_file():
            return load_manifest(candidate)
    raise ManifestError(
        f"no manifest named {name!r} (looked in {', '.join(str(d) for d in manifest_dirs or [])}"
        f"{', ' if manifest_dirs else ''}{MANIFEST_DIR})"
    )


def all_manifests(manifest_dirs: list[Path] | None = None) -> list[tuple[Path, Manifest | ManifestError]]:
    """Every manifest found, each with its parsed form or the error that stops it."""
    found: dict[str, Path] = {}
    for folder in [MANIFEST_DIR, *(manifest_dirs or [])]:
        for path in sorted(Path(folder).glob("*.toml")):
            found[path.stem] = path
    result: list[tuple[Path, Manifest | ManifestError]] = []
    for path in found.values():
        try:
            result.append((path, load_manifest(path)))
        except ManifestError as exc:
            result.append((path, exc))
    return result


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def conversion_record(model_path: Path) -> Path:
    """Beside a model converted at install: the checksums of its source and of the result."""
    return model_path.with_name(model_path.name + ".converted.json")


def checksum_ok(manifest: Manifest, path: Path) -> bool:
    """Is the file the manifest's model? Its sha256 is the manifest's, or it was converted here from
    the manifest's verified source and is unchanged since (conversion is not byte-reproducible, so the
    converted file's checksum is recorded at install and checked from then on)."""
    if manifest.sha256 is None:
        return True
    digest = file_sha256(path)
    if digest == manifest.sha256:
        return True
    record = conversion_record(path)
    if manifest.source is None or not record.is_file():
        return False
    try:
        facts = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return facts.get("source_sha256") == manifest.source.sha256 and facts.get("sha256") == digest


def check_model(manifest: Manifest, backend: Backend) -> None:
    """Refuse a loaded model whose input tensor does not match the manifest (wrong file, wrong manifest)."""
    inputs = backend.inputs
    names = [i.name for i in inputs]
    info = (
        inputs[0]
        if manifest.input.name is None
        else next((i for i in inputs if i.name == manifest.input.name), None)
    )
    if info is None:
        raise ManifestError(
            f"{manifest.ident}: the model has no input {manifest.input.name!r} (it has {names})"
        )
    if info.dtype != manifest.input.dtype:
        raise ManifestError(
            f"{manifest.ident}: model input is {info.dtype}, the manifest says {manifest.input.dtype}"
        )
    if len(info.shape) != 4:
        raise ManifestError(f"{manifest.ident}: model input has {len(info.shape)} dimensions, expected 4")
    spec = manifest.input
    expected = (3, spec.height, spec.width) if spec.layout == "NCHW" else (spec.height, spec.width, 3)
    for got, want in zip(info.shape[1:], expected, strict=True):
        if isinstance(got, int) and got != want:
            raise ManifestError(
                f"{manifest.ident}: model input shape {list(info.shape)} does not match the manifest's "
                f"{spec.layout} {spec.width}x{spec.height}"
            )
