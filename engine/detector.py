"""Stage one: a detector manifest + ONNX model on a backend -> boxes with Yaguar categories."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from .backends import Backend, create_backend
from .backends.options import OptionsInput
from .graph_resize import GraphRewriteError, resized_model
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
            source = resized_model(path, *input_size)
            spec = manifest.input.model_copy(update={"width": input_size[0], "height": input_size[1]})
            manifest = manifest.model_copy(update={"input": spec})
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
    ) -> None:
        if manifest.kind != "detector":
            raise ManifestError(f"{manifest.ident} is a {manifest.kind}, not a detector")
        self.native_manifest = manifest
        self.backend, self.manifest = load_backend(
            manifest, model_dir, backend_kind, backend_options, verify_sha256, input_size
        )
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

    def detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """Detect on BGR uint8 images (any size); one list of detections per image."""
        results: list[list[Detection]] = []
        for start in range(0, len(images), self.max_batch):
            chunk = images[start : start + self.max_batch]
            fitted = [fit(image, self.manifest.input) for image in chunk]
            tensor = to_tensor([f[0] for f in fitted], self.manifest.input)
            outputs = self.backend.run({self.input_name: tensor})[0]
            for row, (_, placement) in zip(outputs, fitted, strict=True):
                results.append(self._boxes(row, placement))
        return results

    def _decode(self, out: np.ndarray) -> RawBoxes:
        spec, fmt = self.manifest.input, self.manifest.output.format
        if fmt == "yolox":
            return decode_yolox(out, spec.width, spec.height, self.manifest.output.strides, self.threshold)
        if fmt == "fastestdet":
            native = self.native_manifest.input
            return decode_fastestdet(
                out, spec.width, spec.height, self.threshold, (native.width, native.height)
            )
        if fmt == "yolov5":
            return decode_yolov5(out, self.threshold)
        return decode_yolov8(out, self.threshold)

    def _boxes(self, out: np.ndarray, placement: Placement) -> list[Detection]:
        boxes = nms(self._decode(out), self.manifest.nms_iou)
        normalised = normalise(boxes, placement)
        found: list[Detection] = []
        for bbox, score, cls in zip(normalised, boxes.scores, boxes.classes, strict=True):
            label = self.labels[int(cls)] if int(cls) < len(self.labels) else str(int(cls))
            category = category_of(label, self.manifest.labels)
            if category is None or bbox[2] <= 0 or bbox[3] <= 0:
                continue  # a cup or a chair: not something a camera trap reports
            found.append(
                Detection(category, label, round(float(score), 4), [round(float(v), 4) for v in bbox])
            )
        return merge_same_category(found, self.manifest.nms_iou)


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
