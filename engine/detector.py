"""Stage one: a detector manifest + ONNX model on a backend -> boxes with Yaguar categories."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from .backends import Backend, create_backend
from .backends.options import OptionsInput
from .graph_resize import SIZE_MULTIPLE, GraphRewriteError, resized_model
from .labelmap import category_of
from .manifest import Manifest, ManifestError, check_model, checksum_ok
from .postprocess import (
    RawBoxes,
    decode_fastestdet,
    decode_yolov5,
    decode_yolov8,
    decode_yolox,
    iou_xywh,
    nms,
    normalise,
)
from .preprocess import Placement, fit, to_tensor

log = logging.getLogger(__name__)

MAX_SHAPES = 4  # input shapes fitted to frames per detector (a camera has one or two); more run as built


@dataclass
class Detection:
    """One box on one image, normalised to the image: bbox = [x_min, y_min, width, height]."""

    category: str  # animal, person, vehicle
    label: str  # the model's own label
    confidence: float
    bbox: list[float]
    species: str | None = None
    species_confidence: float | None = None
    species_label: str | None = None
    classifier: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


def resized(manifest: Manifest, path: Path, size: tuple[int, int]) -> tuple[onnx.ModelProto, Manifest]:
    """The model rewritten to run at ``size`` (width, height), and its manifest at that size."""
    source = resized_model(path, *size)
    spec = manifest.input.model_copy(update={"width": size[0], "height": size[1]})
    return source, manifest.model_copy(update={"input": spec})


def load_backend(
    manifest: Manifest,
    model_dir: Path,
    backend_kind: str,
    options: OptionsInput,
    verify_sha256: bool,
    input_size: tuple[int, int] | None = None,
) -> tuple[Backend, Manifest]:
    """Load a manifest's model, refusing a missing file, a wrong checksum, or a file that is not the
    model the manifest describes; every refusal is a ManifestError or BackendError with one line.

    ``input_size`` (width, height) other than the manifest's runs the model at that size through a
    graph rewrite (graph_resize.py); a graph that cannot be rewritten logs one line and runs at its
    native size. Returns the backend and the manifest as it now runs (its input size)."""
    path = manifest.model_path(model_dir)
    if not path.is_file():
        raise ManifestError(
            f"{manifest.ident}: model file {path} is missing (try `yaguar models fetch {manifest.name}`)"
        )
    if verify_sha256 and not checksum_ok(manifest, path):
        raise ManifestError(f"{manifest.ident}: {path.name} does not match the manifest's sha256")
    source: Path | onnx.ModelProto = path
    if input_size is not None and input_size != (manifest.input.width, manifest.input.height):
        try:
            source, manifest = resized(manifest, path, input_size)
        except GraphRewriteError as exc:
            log.warning(
                "%s: runs at its native %dx%d, not %dx%d: %s",
                manifest.ident,
                manifest.input.width,
                manifest.input.height,
                *input_size,
                exc,
            )
    backend = create_backend(backend_kind, source, options)
    check_model(manifest, backend)
    return backend, manifest


class Detector:
    def __init__(
        self,
        manifest: Manifest,
        model_dir: Path,
        backend_kind: str = "onnxruntime",
        backend_options: OptionsInput = None,
        score_threshold: float | None = None,
        verify_sha256: bool = True,
        input_size: tuple[int, int] | None = None,
        fit_shape: bool = False,
    ) -> None:
        if manifest.kind != "detector":
            raise ManifestError(f"{manifest.ident} is a {manifest.kind}, not a detector")
        self.native_manifest = manifest
        self.backend, self.manifest = load_backend(
            manifest, model_dir, backend_kind, backend_options, verify_sha256, input_size
        )
        # Letterboxing a 4:3 frame into 416x416 feeds the model a quarter of padding. With ``fit_shape``
        # the frame runs at an input cut to its shape (416x320: the same scale, the same pixels, less to
        # compute), through the graph rewrite; a shape that cannot be rewritten runs as built.
        self.fit_shape = fit_shape and self.manifest.input.resize == "letterbox"
        self._shapes: dict[tuple[int, int], tuple[Backend, Manifest]] = {
            self.shape: (self.backend, self.manifest)
        }
        self._shapes_lock = threading.Lock()
        self._load_args = (model_dir, backend_kind, backend_options)
        self.labels = manifest.load_labels(model_dir)
        self.threshold = manifest.score_threshold if score_threshold is None else score_threshold
        info = (
            self.backend.inputs[0]
            if manifest.input.name is None
            else next(i for i in self.backend.inputs if i.name == manifest.input.name)
        )
        self.input_name = info.name
        # A fixed batch of 1 (most exports) runs image by image; a dynamic batch runs in one call.
        self.max_batch = 1 if info.shape[0] == 1 else 64
        self._check_outputs()

    @property
    def ident(self) -> str:
        return self.manifest.ident

    @property
    def min_side(self) -> int:
        """Smallest longer side of a decoded image that loses nothing at this model's input size."""
        return max(self.manifest.input.width, self.manifest.input.height)

    def _check_outputs(self) -> None:
        shape = self.backend.outputs[0].shape
        fmt = self.manifest.output.format
        class_dim = {"yolox": (-1, 5), "yolov5": (-1, 5), "fastestdet": (1, 5), "yolov8": (1, 4)}[fmt]
        size = shape[class_dim[0]] if len(shape) >= 3 else None
        if isinstance(size, int) and size - class_dim[1] != len(self.labels):
            raise ManifestError(
                f"{self.ident}: model output {list(shape)} has {size - class_dim[1]} classes, "
                f"the manifest's labels have {len(self.labels)}"
            )

    def shape_for(self, image: np.ndarray) -> tuple[int, int]:
        """The input (width, height) an image runs at: the model's own, or with ``fit_shape`` the
        smallest multiple of 32 on each side that holds the image at the same scale as the model's own
        input would (never larger than it)."""
        spec = self.manifest.input
        if not self.fit_shape:
            return spec.width, spec.height
        height, width = image.shape[:2]
        ratio = min(spec.width / width, spec.height / height)

        def side(pixels: int, limit: int) -> int:
            return min(limit, -(-max(1, round(pixels * ratio)) // SIZE_MULTIPLE) * SIZE_MULTIPLE)

        return side(width, spec.width), side(height, spec.height)

    def _shape(self, size: tuple[int, int]) -> tuple[Backend, Manifest]:
        """The backend and manifest for an input size, loaded the first time it is asked for; a size
        the graph cannot be rewritten to (logged once) runs at the detector's own size."""
        with self._shapes_lock:
            if size not in self._shapes:
                self._shapes[size] = self._load_shape(size)
            return self._shapes[size]

    def _load_shape(self, size: tuple[int, int]) -> tuple[Backend, Manifest]:
        model_dir, kind, options = self._load_args
        if len(self._shapes) > MAX_SHAPES:
            return self.backend, self.manifest
        try:
            source, manifest = resized(self.native_manifest, self.native_manifest.model_path(model_dir), size)
        except GraphRewriteError as exc:
            self.fit_shape = False  # the graph will not take another shape either: one line, then native
            log.warning("%s: every frame runs at %dx%d (not fitted to it): %s", self.ident, *self.shape, exc)
            return self.backend, self.manifest
        backend = create_backend(kind, source, options)
        check_model(manifest, backend)
        return backend, manifest

    @property
    def shape(self) -> tuple[int, int]:
        return self.manifest.input.width, self.manifest.input.height

    def detect(self, images: list[np.ndarray], threshold: float | None = None) -> list[list[Detection]]:
        """Detect on BGR uint8 images (any size); one list of detections per image. ``threshold``
        (default: the detector's own) is the least confidence a box needs to be reported."""
        results: dict[int, list[Detection]] = {}
        groups: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            groups.setdefault(self.shape_for(image), []).append(index)
        for size, indices in groups.items():
            backend, manifest = self._shape(size)
            for start in range(0, len(indices), self.max_batch):
                chunk = indices[start : start + self.max_batch]
                fitted = [fit(images[i], manifest.input) for i in chunk]
                tensor = to_tensor([f[0] for f in fitted], manifest.input)
                outputs = backend.run({self.input_name: tensor})[0]
                for index, row, (_, placement) in zip(chunk, outputs, fitted, strict=True):
                    results[index] = self._boxes(row, placement, manifest, threshold)
        return [results[i] for i in range(len(images))]

    def _decode(self, out: np.ndarray, manifest: Manifest, threshold: float) -> RawBoxes:
        spec, fmt = manifest.input, manifest.output.format
        if fmt == "yolox":
            return decode_yolox(out, spec.width, spec.height, manifest.output.strides, threshold)
        if fmt == "fastestdet":
            native = self.native_manifest.input
            return decode_fastestdet(out, spec.width, spec.height, threshold, (native.width, native.height))
        if fmt == "yolov5":
            return decode_yolov5(out, threshold)
        return decode_yolov8(out, threshold)

    def _boxes(
        self, out: np.ndarray, placement: Placement, manifest: Manifest, threshold: float | None
    ) -> list[Detection]:
        least = self.threshold if threshold is None else threshold
        boxes = nms(self._decode(out, manifest, least), manifest.nms_iou)
        normalised = normalise(boxes, placement)
        found: list[Detection] = []
        for bbox, score, cls in zip(normalised, boxes.scores, boxes.classes, strict=True):
            label = self.labels[int(cls)] if int(cls) < len(self.labels) else str(int(cls))
            category = category_of(label, manifest.labels)
            if category is None or bbox[2] <= 0 or bbox[3] <= 0:
                continue  # a cup or a chair: not something a camera trap reports
            found.append(
                Detection(category, label, round(float(score), 4), [round(float(v), 4) for v in bbox])
            )
        return merge_same_category(found, manifest.nms_iou)


def merge_same_category(found: list[Detection], iou_threshold: float) -> list[Detection]:
    """Keep one box per object once labels become categories: a COCO detector often boxes one jaguar as
    both "cat" and "dog", which class-aware NMS keeps apart but which is one animal for the count.
    ``found`` is in descending score order, so the most confident box of each object stays."""
    kept: list[Detection] = []
    for detection in found:
        if all(
            other.category != detection.category or iou_xywh(other.bbox, detection.bbox) <= iou_threshold
            for other in kept
        ):
            kept.append(detection)
    return kept
