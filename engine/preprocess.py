"""Turning decoded frames into model input tensors: letterbox or stretch, colour order, layout, dtype,
normalisation, and stacking a batch."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .manifest import InputSpec


@dataclass(frozen=True)
class Placement:
    """How a source image sits in the model input: input = source * (sx, sy) + (dx, dy)."""

    sx: float
    sy: float
    dx: float
    dy: float
    src_w: int
    src_h: int


def fit(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Placement]:
    """Resize a BGR uint8 image into the model's input size, keeping the aspect ratio with grey padding
    (letterbox, top-left aligned as YOLOX and YOLOv5 exports expect) or stretching it."""
    src_h, src_w = image.shape[:2]
    if spec.resize == "stretch":
        sx, sy = spec.width / src_w, spec.height / src_h
        out = cv2.resize(image, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
        return out, Placement(sx, sy, 0.0, 0.0, src_w, src_h)
    ratio = min(spec.width / src_w, spec.height / src_h)
    new_w, new_h = max(1, round(src_w * ratio)), max(1, round(src_h * ratio))
    out = np.full((spec.height, spec.width, 3), spec.pad_value, dtype=np.uint8)
    dx, dy = ((spec.width - new_w) // 2, (spec.height - new_h) // 2) if spec.align == "centre" else (0, 0)
    out[dy : dy + new_h, dx : dx + new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return out, Placement(ratio, ratio, float(dx), float(dy), src_w, src_h)


def to_tensor(images: list[np.ndarray], spec: InputSpec) -> np.ndarray:
    """Stack fitted BGR uint8 images into one input tensor as the manifest describes it."""
    batch = np.stack(images)  # N,H,W,C BGR uint8
    if spec.colour == "RGB":
        batch = batch[..., ::-1]
    if spec.dtype == "uint8":
        tensor = np.ascontiguousarray(batch)
    else:
        tensor = batch.astype(np.float32)
        if spec.scale != 1.0:
            tensor *= np.float32(spec.scale)
        if any(spec.mean):
            tensor -= np.asarray(spec.mean, dtype=np.float32)
        if any(s != 1.0 for s in spec.std):
            tensor /= np.asarray(spec.std, dtype=np.float32)
    if spec.layout == "NCHW":
        tensor = np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))
    return tensor
