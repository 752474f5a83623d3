"""Shared pieces of the OpenCL backend tests: skip reasons, building one-op ONNX graphs, running
onnxruntime as the reference, and a plain YOLO decode + NMS for comparing final detections."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def require_opencl() -> None:
    """Skip with a reason when pyopencl or an OpenCL platform/device is missing."""
    cl = pytest.importorskip("pyopencl", reason="pyopencl is not installed (pip install yaguar[opencl])")
    try:
        devices = [d for p in cl.get_platforms() for d in p.get_devices()]
    except cl.Error as exc:
        pytest.skip(f"no OpenCL platform: {exc}")
    if not devices:
        pytest.skip("no OpenCL device (install pocl-opencl-icd for a CPU device)")


def model(
    nodes: Sequence[onnx.NodeProto],
    inputs: dict[str, Sequence[int]],
    outputs: Sequence[str],
    consts: dict[str, np.ndarray] | None = None,
    opset: int = OPSET,
) -> onnx.ModelProto:
    """A float32 graph of ``nodes`` with the given input shapes and constant initialisers."""
    graph = helper.make_graph(
        list(nodes),
        "t",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (consts or {}).items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def ort_run(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def plan_with(m: onnx.ModelProto, cache_dir: Path, tile: dict | None):
    """A plan of ``m`` whose first conv uses ``tile`` (None: the default choice)."""
    from yaguar.engine.backends.opencl.executor import Plan
    from yaguar.engine.backends.opencl.runtime import open_runtime

    rt = open_runtime(None, cache_dir)
    plan = Plan(m, rt, None, False)
    if tile is None:
        return plan
    return Plan(m, rt, None, False, choices={plan.launches[0].tune.signature: tile})


def rand(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.45) -> list[int]:
    """Greedy NMS on [x1, y1, x2, y2] boxes; returns kept indices, best first."""
    order = np.argsort(-scores)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        ious = inter / (area(boxes[i]) + area(boxes[order[1:]]) - inter + 1e-9)
        order = order[1:][ious < iou]
    return keep


def decode_yolox(out: np.ndarray, size: int, conf: float = 0.3) -> list[tuple[int, float, np.ndarray]]:
    """YOLOX raw [N, 85] -> (class, score, box xyxy in input pixels) after NMS (SOURCES.md recipe)."""
    grids, strides = [], []
    for s in (8, 16, 32):
        n = size // s
        yy, xx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        grids.append(np.stack([xx, yy], -1).reshape(-1, 2))
        strides.append(np.full((n * n, 1), s))
    grid, stride = np.concatenate(grids), np.concatenate(strides)
    xy = (out[:, :2] + grid) * stride
    wh = np.exp(out[:, 2:4]) * stride
    scores = out[:, 4:5] * out[:, 5:]
    cls = scores.argmax(1)
    best = scores.max(1)
    sel = best > conf
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], 1)[sel]
    return [(int(cls[sel][i]), float(best[sel][i]), boxes[i]) for i in nms(boxes, best[sel])]


def decode_fastestdet(out: np.ndarray, conf: float = 0.65) -> list[tuple[int, float, np.ndarray]]:
    """FastestDet [85, H, W] -> (class, score, box xyxy normalised) after NMS (SOURCES.md recipe)."""
    _, h, w = out.shape
    p = out.reshape(85, -1).T
    ys, xs = np.divmod(np.arange(h * w), w)
    score = p[:, 0] ** 0.6 * p[:, 5:].max(1) ** 0.4
    cls = p[:, 5:].argmax(1)
    cx, cy = (np.tanh(p[:, 1]) + xs) / w, (np.tanh(p[:, 2]) + ys) / h
    bw, bh = 1 / (1 + np.exp(-p[:, 3])), 1 / (1 + np.exp(-p[:, 4]))
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    sel = score > conf
    return [(int(cls[sel][i]), float(score[sel][i]), boxes[sel][i]) for i in nms(boxes[sel], score[sel])]


def same_detections(a: list, b: list, box_tol: float) -> bool:
    """Same classes in the same order, scores within 0.02, boxes within ``box_tol``."""
    if len(a) != len(b):
        return False
    return all(
        ca == cb and abs(sa - sb) < 0.02 and np.abs(ba - bb).max() < box_tol
        for (ca, sa, ba), (cb, sb, bb) in zip(a, b, strict=True)
    )
