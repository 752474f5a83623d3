"""Decoding raw detector outputs into boxes, per output format, then class-aware NMS and boxes
normalised to the image as MegaDetector writes them: [x_min, y_min, width, height] in [0, 1].

Formats:
- ``yolox``: [N, anchors, 5 + C] raw; centre = (xy + grid) * stride, size = exp(wh) * stride,
  score = objectness * class.
- ``fastestdet``: [N, 5 + C, H, W]; objectness, tanh x/y offsets in cells, sigmoid w/h of the image,
  score = obj^0.6 * cls^0.4.
- ``yolov5`` (and MegaDetector v5): [N, anchors, 5 + C], centre/size already in input pixels,
  score = objectness * class.
- ``yolov8`` (and YOLO11): [N, 4 + C, anchors], centre/size in input pixels, class scores only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .preprocess import Placement


@dataclass
class RawBoxes:
    """Boxes of one image in model-input pixels (x1, y1, x2, y2), with score and class index."""

    xyxy: np.ndarray  # float32 [K, 4]
    scores: np.ndarray  # float32 [K]
    classes: np.ndarray  # int64 [K]


def _empty() -> RawBoxes:
    return RawBoxes(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


def _from_centres(cxcywh: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> RawBoxes:
    half = cxcywh[:, 2:4] / 2
    xyxy = np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], axis=1).astype(np.float32)
    return RawBoxes(xyxy, scores.astype(np.float32), classes.astype(np.int64))


def _best_class(class_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    classes = class_scores.argmax(axis=1)
    return classes, class_scores[np.arange(len(classes)), classes]


@lru_cache(maxsize=8)
def _yolox_grid(width: int, height: int, strides: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    grids, expanded = [], []
    for stride in strides:
        gw, gh = width // stride, height // stride
        xs, ys = np.meshgrid(np.arange(gw), np.arange(gh))
        grids.append(np.stack((xs, ys), axis=2).reshape(-1, 2))
        expanded.append(np.full((gw * gh, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(expanded).astype(np.float32)


def decode_yolox(out: np.ndarray, width: int, height: int, strides: list[int], threshold: float) -> RawBoxes:
    grid, stride_col = _yolox_grid(width, height, tuple(strides))
    if len(grid) != out.shape[0]:
        raise ValueError(f"yolox output has {out.shape[0]} anchors, strides {strides} give {len(grid)}")
    # score = objectness * class <= objectness: most anchors are dropped before the class argmax.
    rows = np.nonzero(out[:, 4] >= threshold)[0]
    if len(rows) == 0:
        return _empty()
    candidates = out[rows]
    classes, cls_scores = _best_class(candidates[:, 5:])
    scores = candidates[:, 4] * cls_scores
    keep = scores >= threshold
    if not keep.any():
        return _empty()
    rows = rows[keep]
    centres = (out[rows, :2] + grid[rows]) * stride_col[rows]
    sizes = np.exp(out[rows, 2:4]) * stride_col[rows]
    return _from_centres(np.concatenate([centres, sizes], axis=1), scores[keep], classes[keep])


def decode_fastestdet(
    out: np.ndarray, width: int, height: int, threshold: float, native: tuple[int, int] | None = None
) -> RawBoxes:
    """``native`` (width, height): the size the model was trained at. FastestDet predicts a box's size
    as a fraction of that input, so at a larger input (graph_resize) a box is that fraction of the
    native size in input pixels, not of the larger input: an object keeps its pixel size."""
    channels, gh, gw = out.shape
    size_w, size_h = native or (width, height)
    cells = out.reshape(channels, -1).T  # [H*W, 5+C]
    classes, cls_scores = _best_class(cells[:, 5:])
    obj = np.clip(cells[:, 0], 0, None)
    scores = obj**0.6 * np.clip(cls_scores, 0, None) ** 0.4
    keep = scores >= threshold
    if not keep.any():
        return _empty()
    idx = np.nonzero(keep)[0]
    cy, cx = np.divmod(idx, gw)
    sel = cells[keep]
    centre_x = (cx + np.tanh(sel[:, 1])) / gw * width
    centre_y = (cy + np.tanh(sel[:, 2])) / gh * height
    box_w = 1 / (1 + np.exp(-sel[:, 3])) * size_w
    box_h = 1 / (1 + np.exp(-sel[:, 4])) * size_h
    return _from_centres(np.stack([centre_x, centre_y, box_w, box_h], axis=1), scores[keep], classes[keep])


def decode_yolov5(out: np.ndarray, threshold: float) -> RawBoxes:
    # Objectness first: most anchors are empty, so the class argmax runs on the few that are not.
    candidates = out[out[:, 4] >= threshold]
    if len(candidates) == 0:
        return _empty()
    classes, cls_scores = _best_class(candidates[:, 5:])
    scores = candidates[:, 4] * cls_scores
    keep = scores >= threshold
    return _from_centres(candidates[keep, :4], scores[keep], classes[keep])


def decode_yolov8(out: np.ndarray, threshold: float) -> RawBoxes:
    rows = out.T  # [anchors, 4 + C]
    classes, scores = _best_class(rows[:, 4:])
    keep = scores >= threshold
    if not keep.any():
        return _empty()
    return _from_centres(rows[keep, :4], scores[keep], classes[keep])


def nms(boxes: RawBoxes, iou_threshold: float, max_boxes: int = 100) -> RawBoxes:
    """Class-aware non-maximum suppression: a box only suppresses boxes of its own class."""
    if len(boxes.scores) == 0:
        return boxes
    # Shift each class into its own region of the plane, so one pass never lets classes touch.
    offset = boxes.classes[:, None].astype(np.float32) * (float(boxes.xyxy.max()) + 1.0)
    xyxy = boxes.xyxy + offset
    x1, y1, x2, y2 = xyxy.T
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    order = boxes.scores.argsort()[::-1]
    kept: list[int] = []
    while order.size and len(kept) < max_boxes:
        i = int(order[0])
        kept.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    idx = np.asarray(kept, dtype=np.int64)
    return RawBoxes(boxes.xyxy[idx], boxes.scores[idx], boxes.classes[idx])


def normalise(boxes: RawBoxes, placement: Placement) -> np.ndarray:
    """Model-input pixel boxes -> [x_min, y_min, width, height] as fractions of the source image."""
    if len(boxes.scores) == 0:
        return np.zeros((0, 4), np.float32)
    x1 = (boxes.xyxy[:, 0] - placement.dx) / placement.sx / placement.src_w
    y1 = (boxes.xyxy[:, 1] - placement.dy) / placement.sy / placement.src_h
    x2 = (boxes.xyxy[:, 2] - placement.dx) / placement.sx / placement.src_w
    y2 = (boxes.xyxy[:, 3] - placement.dy) / placement.sy / placement.src_h
    x1, x2 = np.clip(x1, 0, 1), np.clip(x2, 0, 1)
    y1, y2 = np.clip(y1, 0, 1), np.clip(y2, 0, 1)
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1).astype(np.float32)


def iou_xywh(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> float:
    """IoU of two [x_min, y_min, width, height] boxes."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0
