"""Pooling, Resize, Softmax, reductions and Gemm/MatMul lowering."""

from __future__ import annotations

import numpy as np

from ...base import BackendError
from .. import shapes
from ..graph import Node
from ..intmath import cdiv
from ..lower import Lowerer, lowering, vec

_COORD = {
    "half_pixel": 0,
    "asymmetric": 1,
    "align_corners": 2,
    "pytorch_half_pixel": 3,
    "tf_half_pixel_for_nn": 4,
}
_NEAREST = {"round_prefer_floor": 0, "round_prefer_ceil": 1, "floor": 2, "ceil": 3}


def _require_contiguous(lw: Lowerer, node: Node, t: str) -> None:
    if not lw.g.is_const(t) and not lw.mem.is_contiguous(t):
        raise BackendError(f"{node.op} node {node.name!r}: input {t!r} is a strided view (planner bug)")


@lowering("MaxPool", "AveragePool")
def lower_pool(lw: Lowerer, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    n, c, h, w = lw.shape(x)
    _, _, ho, wo = lw.shape(y)
    kh, kw = node.attrs["kernel_shape"]
    (sy, sx), p, (dy, dx) = node.attrs["strides"], node.attrs["pads"], node.attrs["dilations"]
    is_max = int(node.op == "MaxPool")
    if (ho, wo, kh, kw, dy, dx) == (1, 1, h, w, 1, 1) and not any(p):  # the whole map: a global pool
        _global_pool(lw, node, is_max)  # (MobileNetV2's 7x7 average: 1280 groups of one item before)
        return
    (xb, xo, xs), (yb, yo, ys) = lw.addr(x), lw.addr(y)
    args = [
        xb,
        xo,
        xs,
        yb,
        yo,
        ys,
        *map(
            np.int32,
            (
                c,
                h,
                w,
                ho,
                wo,
                kh,
                kw,
                sy,
                sx,
                p[0],
                p[1],
                dy,
                dx,
                node.attrs.get("count_include_pad", 0),
            ),
        ),
    ]
    taps = {"KH": kh, "KW": kw} if kh * kw <= 49 else {}
    if is_max and dy == dx == sy == sx == 1 and kh * kw >= 25 and kw <= 25:  # separable, 8 outputs
        kernel, gsize = (
            lw.kernel("pool", "pool2d_max_sep", {"IS_MAX": 1, "SEP": 1, "KH": kh, "KW": kw}),
            (cdiv(wo, 8), ho, n * c),
        )
    elif is_max and dy == dx == 1 and sx in (1, 2):  # eight outputs per work-item, vector taps
        kernel, gsize = (
            lw.kernel("pool", "pool2d_max8", {"IS_MAX": 1, "SX": sx, **taps}),
            (cdiv(wo, 8), ho, n * c),
        )
    else:
        kernel, gsize = lw.kernel("pool", "pool2d", {"IS_MAX": is_max, **taps}), (wo, ho, n * c)
    lw.add(
        node,
        f"pool2d.{'max' if is_max else 'avg'}",
        kernel,
        args,
        gsize,
        float(n * c * ho * wo * kh * kw),
        float(lw.itemsize * (n * c * (h * w + ho * wo))),
    )


@lowering("GlobalAveragePool", "GlobalMaxPool")
def lower_global_pool(lw: Lowerer, node: Node) -> None:
    _global_pool(lw, node, int(node.op == "GlobalMaxPool"))


def _global_pool(lw: Lowerer, node: Node, is_max: int) -> None:
    """One work-item per (image, channel) reduces its whole map."""
    x, y = node.inputs[0], node.outputs[0]
    n, c = lw.shape(x)[:2]
    hw = int(np.prod(lw.shape(x)[2:]))
    (xb, xo, xs), (yb, yo, ys) = lw.addr(x), lw.addr(y)
    args = [xb, xo, xs, yb, yo, ys, np.int32(c), np.int32(hw)]
    lw.add(
        node,
        "global_pool",
        lw.kernel("pool", "global_pool", {"IS_MAX": is_max}),
        args,
        (c, n),
        float(n * c * hw),
        float(lw.itemsize * n * c * (hw + 1)),
    )


@lowering("Resize", "Upsample")
def lower_resize(lw: Lowerer, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    out, scales = shapes.resize_scales(lw.g, node)
    if len(out) != 4 or out[:2] != lw.shape(x)[:2]:
        raise BackendError(
            f"{node.op} node {node.name!r}: only spatial resizing of NCHW tensors is supported"
        )
    mode = node.attrs.get("mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear"):
        raise BackendError(f"{node.op} node {node.name!r}: mode {mode!r} is not supported")
    coord = node.attrs.get(
        "coordinate_transformation_mode", "asymmetric" if node.op == "Upsample" else "half_pixel"
    )
    if node.op == "Upsample" or lw.g.opset < 11:
        coord = "asymmetric"
    if coord not in _COORD:
        raise BackendError(f"{node.op} node {node.name!r}: coordinate mode {coord!r} is not supported")
    nearest = node.attrs.get("nearest_mode", "round_prefer_floor")
    if node.op == "Upsample" or lw.g.opset < 11:
        nearest = "floor"
    n, c, h, w = lw.shape(x)
    ho, wo = out[2:]
    (xb, xo, xs), (yb, yo, ys) = lw.addr(x), lw.addr(y)
    args = [
        xb,
        xo,
        xs,
        yb,
        yo,
        ys,
        *map(np.int32, (c, h, w, ho, wo)),
        np.float32(scales[2]),
        np.float32(scales[3]),
    ]
    fy, fx = ho // h, wo // w
    floor_map = (coord == "asymmetric" and nearest == "floor") or (
        coord in ("half_pixel", "pytorch_half_pixel") and nearest.startswith("round_prefer")
    )
    if mode == "nearest" and floor_map and ho == fy * h and wo == fx * w and scales[2:] == [fy, fx]:
        # integer upsampling whose source index is floor(o / F) (YOLO's 2x): the vector variant
        k = lw.kernel("resize", "resize2d_nearest_int", {"FY": fy, "FX": fx})
        lw.add(node, "resize.nearest", k, args[:11], (cdiv(wo, 8), ho, n * c), 0.0,
               float(lw.itemsize * n * c * (h * w + ho * wo)))  # fmt: skip
        return
    defs = {"MODE": int(mode != "nearest"), "COORD": _COORD[coord], "NEAREST": _NEAREST[nearest]}
    lw.add(
        node,
        f"resize.{'nearest' if mode == 'nearest' else 'linear'}",
        lw.kernel("resize", "resize2d", defs),
        args,
        (wo, ho, n * c),
        0.0,
        float(lw.itemsize * n * c * (h * w + ho * wo)),
    )


def _outer_len_inner(shape: tuple[int, ...], first: int, last: int) -> tuple[int, int, int]:
    return (
        int(np.prod(shape[:first])),
        int(np.prod(shape[first : last + 1])),
        int(np.prod(shape[last + 1 :])),
    )


@lowering("Softmax", "LogSoftmax")
def lower_softmax(lw: Lowerer, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    _require_contiguous(lw, node, x)
    shape = lw.shape(x)
    axis = node.attrs.get("axis", -1 if lw.g.opset >= 13 else 1) % len(shape)
    last = axis if lw.g.opset >= 13 else len(shape) - 1
    outer, length, inner = _outer_len_inner(shape, axis, last)
    (xb, xo, _), (yb, yo, _) = lw.addr(x), lw.addr(y)
    args = [xb, xo, yb, yo, *map(np.int32, (outer, length, inner, node.op == "LogSoftmax"))]
    total = outer * length * inner
    lw.add(
        node,
        "softmax",
        lw.kernel("softmax", "softmax"),
        args,
        (inner, outer),
        5.0 * total,
        float(lw.itemsize * 2 * total),
    )


@lowering("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin")
def lower_reduce(lw: Lowerer, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    _require_contiguous(lw, node, x)
    axes = shapes.reduce_axes(lw.g, node)
    if not axes or axes != list(range(axes[0], axes[-1] + 1)):
        raise BackendError(f"{node.op} node {node.name!r}: reduced axes {axes} must be adjacent")
    outer, length, inner = _outer_len_inner(lw.shape(x), axes[0], axes[-1])
    op = {"ReduceSum": 0, "ReduceMean": 1, "ReduceMax": 2, "ReduceMin": 3}[node.op]
    (xb, xo, _), (yb, yo, _) = lw.addr(x), lw.addr(y)
    args = [xb, xo, yb, yo, *map(np.int32, (outer, length, inner, op))]
    lw.add(
        node,
        "reduce",
        lw.kernel("reduce", "reduce"),
        args,
        (inner, outer),
        float(outer * length * inner),
        float(lw.itemsize * outer * length * inner),
    )


@lowering("Gemm", "MatMul")
def lower_gemm(lw: Lowerer, node: Node) -> None:
    a, b, y = node.inputs[0], node.inputs[1], node.outputs[0]
    _require_contiguous(lw, node, a)
    ash, bsh, ysh = lw.shape(a), lw.shape(b), lw.shape(y)
    ta, tb = node.attrs.get("transA", 0), node.attrs.get("transB", 0)
    m, n = ysh[-2], ysh[-1]
    k = ash[-2] if ta else ash[-1]
    batch = int(np.prod(ysh[:-2])) if len(ysh) > 2 else 1
    a_rows, a_cols = ash[-2], ash[-1]
    a_batch = int(np.prod(ash[:-2])) if len(ash) > 2 else 1
    if a_batch not in (1, batch):
        raise BackendError(f"{node.op} node {node.name!r}: broadcast batch of A is not supported")
    sa = vec("int4", a_rows * a_cols if a_batch > 1 else 0, 1 if ta else a_cols, a_cols if ta else 1, 0)
    b_batch = int(np.prod(bsh[:-2])) if len(bsh) > 2 else 1
    if b_batch not in (1, batch):
        raise BackendError(f"{node.op} node {node.name!r}: broadcast batch of B is not supported")
    b_rows, b_cols = bsh[-2], bsh[-1]
    sb = vec("int4", b_rows * b_cols if b_batch > 1 else 0, 1 if tb else b_cols, b_cols if tb else 1, 0)
    abuf, aoff, _ = lw.addr(a)
    if lw.g.is_const(b):
        bw, bs, boff = lw.const_buffer(lw.g.const(b).astype(np.float32)), None, np.int32(0)
    else:
        _require_contiguous(lw, node, b)
        bw = None
        bs, boff, _ = lw.addr(b)
    cbias, sc = None, vec("int4", 0, 0, 0, 0)
    if node.op == "Gemm" and len(node.inputs) > 2 and node.inputs[2]:
        c = np.broadcast_to(lw.g.const(node.inputs[2]).astype(np.float32), (m, n))
        cbias = lw.const_buffer(np.ascontiguousarray(c))
        sc = vec("int4", n, 1, 0, 0)
    yb, yo, _ = lw.addr(y)
    act = node.fused.get("act1", (0, 0.0, 0.0))
    args = [
        abuf,
        aoff,
        sa,
        bs,
        boff,
        bw,
        sb,
        cbias,
        sc,
        yb,
        yo,
        *map(np.int32, (m, n, k)),
        np.float32(node.attrs.get("alpha", 1.0)),
        np.float32(node.attrs.get("beta", 1.0)),
        np.float32(act[1]),
        np.float32(act[2]),
    ]
    lw.add(
        node,
        "gemm",
        lw.kernel("gemm", "gemm", {"ACT": act[0]}),
        args,
        (n, m, batch),
        2.0 * batch * m * n * k,
        float(4 * (batch * m * k + k * n + batch * m * n)),
    )
