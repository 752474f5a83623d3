"""The shape pass: the static shape of every op's outputs, for every op the OpenCL backend runs
(non-constant tensors only; constant subgraphs are folded before they get here). It reads the graph
and never changes it. An op missing here is unsupported: ``infer`` raises ``BackendError`` naming the
op and the node. The front end calls it node by node, since folding ``Shape`` needs the shapes before it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..base import BackendError
from .intmath import cdiv

if TYPE_CHECKING:
    from .graph import Graph, Node

Shape = tuple[int, ...]
F32 = np.dtype(np.float32)

UNARY = {
    "Relu",
    "Clip",
    "Sigmoid",
    "Tanh",
    "LeakyRelu",
    "HardSigmoid",
    "HardSwish",
    "Exp",
    "Log",
    "Sqrt",
    "Neg",
    "Abs",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Erf",
    "Identity",
    "Dropout",
    "Softmax",
    "LogSoftmax",
    "DequantizeLinear",
    "FakeQuant",
    "SiLU",
}
BINARY = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "PRelu"}
# Ops that only relabel a contiguous tensor's shape: never a kernel, always a view.
VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}


def _in(g: Graph, n: Node, i: int) -> Shape:
    return g.values[n.inputs[i]].shape


def _opt_const(g: Graph, n: Node, i: int) -> np.ndarray | None:
    if len(n.inputs) > i and n.inputs[i]:
        return g.const(n.inputs[i])
    return None


def broadcast(*shapes: Shape) -> Shape:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise BackendError(f"shapes {shapes} do not broadcast") from None


def _conv_out(size: int, k: int, s: int, p0: int, p1: int, d: int, ceil: bool = False) -> int:
    span = size + p0 + p1 - ((k - 1) * d + 1)
    out = (cdiv(span, s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p0:  # the last window must start inside the input (ONNX)
        out -= 1
    return out


def window_params(g: Graph, n: Node, kernel: list[int]) -> tuple[list[int], list[int], list[int]]:
    """strides, pads (begin..., end...), dilations with auto_pad resolved."""
    x = _in(g, n, 0)
    nd = len(kernel)
    strides = list(n.attrs.get("strides", [1] * nd))
    dil = list(n.attrs.get("dilations", [1] * nd))
    pads = list(n.attrs.get("pads", [0] * (2 * nd)))
    auto = n.attrs.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * nd)
        for i in range(nd):
            out = cdiv(x[2 + i], strides[i])
            total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - x[2 + i])
            small, big = total // 2, total - total // 2
            pads[i], pads[i + nd] = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pads = [0] * (2 * nd)
    return strides, pads, dil


def _conv(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    x, w = _in(g, n, 0), _in(g, n, 1)
    if len(x) != 4:
        raise BackendError(f"{n.op} node {n.name!r}: only 2-D convolution is supported (input {x})")
    kernel = list(n.attrs.get("kernel_shape", w[2:]))
    s, p, d = window_params(g, n, kernel)
    n.attrs.update(strides=s, pads=p, dilations=d, kernel_shape=kernel, auto_pad="NOTSET")
    return [
        ((x[0], w[0], *(_conv_out(x[2 + i], kernel[i], s[i], p[i], p[i + 2], d[i]) for i in range(2))), F32)
    ]


def _pool(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    x = _in(g, n, 0)
    if len(x) != 4:
        raise BackendError(f"{n.op} node {n.name!r}: only 2-D pooling is supported (input {x})")
    kernel = list(n.attrs["kernel_shape"])
    s, p, d = window_params(g, n, kernel)
    n.attrs.update(strides=s, pads=p, dilations=d, auto_pad="NOTSET")
    ceil = bool(n.attrs.get("ceil_mode", 0))
    out = tuple(_conv_out(x[2 + i], kernel[i], s[i], p[i], p[i + 2], d[i], ceil) for i in range(2))
    return [((x[0], x[1], *out), F32)]


def _global_pool(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    x = _in(g, n, 0)
    return [((x[0], x[1], *([1] * (len(x) - 2))), F32)]


def _reshape(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    x = _in(g, n, 0)
    target = [int(v) for v in g.const(n.inputs[1])]
    allow_zero = n.attrs.get("allowzero", 0)
    target = [x[i] if (v == 0 and not allow_zero) else v for i, v in enumerate(target)]
    size = int(np.prod(x))
    if -1 in target:
        known = int(np.prod([v for v in target if v != -1]))
        target[target.index(-1)] = size // known if known else 0
    if int(np.prod(target)) != size:
        raise BackendError(f"Reshape node {n.name!r}: cannot reshape {x} to {target}")
    return [(tuple(target), g.values[n.inputs[0]].dtype)]


def _flatten(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    x = _in(g, n, 0)
    axis = n.attrs.get("axis", 1) % (len(x) + 1) if x else 0
    return [((int(np.prod(x[:axis])), int(np.prod(x[axis:]))), g.values[n.inputs[0]].dtype)]


def axes_of(g: Graph, n: Node, idx: int = 1) -> list[int] | None:
    if "axes" in n.attrs:
        return list(n.attrs["axes"])
    c = _opt_const(g, n, idx)
    return None if c is None else [int(a) for a in c]


def _squeeze(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    x = _in(g, n, 0)
    axes = axes_of(g, n)
    keep = [d for i, d in enumerate(x) if (d != 1 if axes is None else i not in [a % len(x) for a in axes])]
    return [(tuple(keep), g.values[n.inputs[0]].dtype)]


def _unsqueeze(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    x = list(_in(g, n, 0))
    axes = axes_of(g, n) or []
    rank = len(x) + len(axes)
    for a in sorted(a % rank for a in axes):
        x.insert(a, 1)
    return [(tuple(x), g.values[n.inputs[0]].dtype)]


def _transpose(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    x = _in(g, n, 0)
    perm = list(n.attrs.get("perm", list(range(len(x)))[::-1]))
    return [(tuple(x[p] for p in perm), g.values[n.inputs[0]].dtype)]


def _concat(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    shapes = [_in(g, n, i) for i in range(len(n.inputs))]
    axis = n.attrs["axis"] % len(shapes[0])
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return [(tuple(out), F32)]


def split_sizes(g: Graph, n: Node) -> list[int]:
    x = _in(g, n, 0)
    axis = n.attrs.get("axis", 0) % len(x)
    sizes = n.attrs.get("split")
    if sizes is None:
        c = _opt_const(g, n, 1)
        sizes = None if c is None else [int(v) for v in c]
    if sizes is None:
        parts = n.attrs.get("num_outputs", len(n.outputs))
        step = cdiv(x[axis], parts)
        sizes = [min(step, x[axis] - i * step) for i in range(parts)]
    return sizes


def _split(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    x = _in(g, n, 0)
    axis = n.attrs.get("axis", 0) % len(x)
    out = []
    for size in split_sizes(g, n):
        s = list(x)
        s[axis] = size
        out.append((tuple(s), F32))
    return out


def slice_params(g: Graph, n: Node) -> list[tuple[int, int, int, int]]:
    """(axis, start, stop, step) per sliced axis, clamped as ONNX says."""
    x = _in(g, n, 0)
    if "starts" in n.attrs:
        starts, ends = n.attrs["starts"], n.attrs["ends"]
        axes = n.attrs.get("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = g.const(n.inputs[1]), g.const(n.inputs[2])
        axes_c, steps_c = _opt_const(g, n, 3), _opt_const(g, n, 4)
        axes = list(range(len(starts))) if axes_c is None else list(axes_c)
        steps = [1] * len(starts) if steps_c is None else list(steps_c)
    out = []
    for a0, s0, e0, st0 in zip(axes, starts, ends, steps, strict=True):
        a, st, dim = int(a0) % len(x), int(st0), x[int(a0) % len(x)]
        s, e = int(max(min(s0, 2**62), -(2**62))), int(max(min(e0, 2**62), -(2**62)))
        s, e = (s + dim if s < 0 else s), (e + dim if e < 0 else e)
        if st > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
        out.append((a, s, e, st))
    return out


def _slice(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    x = list(_in(g, n, 0))
    for a, s, e, st in slice_params(g, n):
        x[a] = max(0, cdiv(e - s, st)) if st > 0 else max(0, cdiv(s - e, -st))
    return [(tuple(x), F32)]


def _gather(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    x = _in(g, n, 0)
    if not g.is_const(n.inputs[1]):
        raise BackendError(f"Gather node {n.name!r}: only constant indices are supported")
    idx = g.const(n.inputs[1])
    axis = n.attrs.get("axis", 0) % len(x)
    return [((*x[:axis], *idx.shape, *x[axis + 1 :]), F32)]


def _space_to_depth(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    x, b = _in(g, n, 0), int(n.attrs["blocksize"])
    if len(x) != 4 or x[2] % b or x[3] % b:
        raise BackendError(f"SpaceToDepth node {n.name!r}: input {list(x)} is not NCHW divisible by {b}")
    return [((x[0], x[1] * b * b, x[2] // b, x[3] // b), g.values[n.inputs[0]].dtype)]


def pad_amounts(g: Graph, n: Node) -> list[int]:
    pads = n.attrs.get("pads")
    if pads is None:
        pads = [int(v) for v in g.const(n.inputs[1])]
    x = _in(g, n, 0)
    axes = _opt_const(g, n, 3)
    if axes is not None:
        full = [0] * (2 * len(x))
        for i, a in enumerate(int(v) % len(x) for v in axes):
            full[a], full[a + len(x)] = pads[i], pads[i + len(axes)]
        pads = full
    return list(pads)


def _pad(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    x = _in(g, n, 0)
    p = pad_amounts(g, n)
    if any(v < 0 for v in p):
        raise BackendError(f"Pad node {n.name!r}: negative pads are not supported")
    return [(tuple(d + p[i] + p[i + len(x)] for i, d in enumerate(x)), F32)]


def resize_scales(g: Graph, n: Node) -> tuple[Shape, list[float]]:
    x = _in(g, n, 0)
    if n.op == "Upsample" or g.opset < 11:
        scales = [float(v) for v in (n.attrs.get("scales") or g.const(n.inputs[1]))]
        return tuple(int(np.floor(d * s)) for d, s in zip(x, scales, strict=True)), scales
    scales_c, sizes_c = _opt_const(g, n, 2), _opt_const(g, n, 3)
    if sizes_c is not None and sizes_c.size:
        sizes = [int(v) for v in sizes_c]
        sizes[0] = x[0]  # a batch baked into sizes follows the planned batch
        return tuple(sizes), [o / i for o, i in zip(sizes, x, strict=True)]
    if scales_c is None or not scales_c.size:
        raise BackendError(f"Resize node {n.name!r} has neither scales nor sizes")
    scales = [float(v) for v in scales_c]
    return tuple(int(np.floor(d * s)) for d, s in zip(x, scales, strict=True)), scales


def _resize(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    out, _ = resize_scales(g, n)
    return [(out, F32)]


def reduce_axes(g: Graph, n: Node) -> list[int]:
    x = _in(g, n, 0)
    axes = axes_of(g, n)
    if not axes:
        return [] if n.attrs.get("noop_with_empty_axes", 0) else list(range(len(x)))
    return sorted(a % len(x) for a in axes)


def _reduce(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    x = _in(g, n, 0)
    axes = reduce_axes(g, n)
    keep = n.attrs.get("keepdims", 1)
    out = (
        [1 if i in axes else d for i, d in enumerate(x)]
        if keep
        else [d for i, d in enumerate(x) if i not in axes]
    )
    return [(tuple(out), F32)]


def _gemm(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    a, b = _in(g, n, 0), _in(g, n, 1)
    m = a[1] if n.attrs.get("transA", 0) else a[0]
    nn = b[0] if n.attrs.get("transB", 0) else b[1]
    return [((m, nn), F32)]


def _matmul(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    a, b = list(_in(g, n, 0)), list(_in(g, n, 1))
    if len(a) == 1 or len(b) == 1:
        raise BackendError(f"MatMul node {n.name!r}: 1-D operands are not supported")
    batch = broadcast(tuple(a[:-2]), tuple(b[:-2]))
    if a[-1] != b[-2]:
        raise BackendError(f"MatMul node {n.name!r}: {a} x {b} do not match")
    return [((*batch, a[-2], b[-1]), F32)]


def _expand(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    shape = tuple(int(v) for v in g.const(n.inputs[1]))
    return [(broadcast(_in(g, n, 0), shape), F32)]


def _same(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    return [(_in(g, n, 0), F32)]


def _quantize(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    zp = _opt_const(g, n, 2)
    return [(_in(g, n, 0), np.dtype(np.uint8) if zp is None else zp.dtype)]


def _binary(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    return [(broadcast(*(_in(g, n, i) for i in range(len(n.inputs)))), F32)]


def _batchnorm(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    return [(_in(g, n, 0), F32)]


def _cast(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    from onnx import helper

    to = np.dtype(helper.tensor_dtype_to_np_dtype(n.attrs["to"]))
    if to.kind != "f":
        raise BackendError(f"Cast node {n.name!r}: casting a computed tensor to {to} is not supported")
    return [(_in(g, n, 0), F32)]


RULES: dict[str, Callable[[Graph, Node], list[tuple[Shape, np.dtype]]]] = {
    "Conv": _conv,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": _transpose,
    "Concat": _concat,
    "Split": _split,
    "Slice": _slice,
    "Gather": _gather,
    "SpaceToDepth": _space_to_depth,
    "Pad": _pad,
    "Resize": _resize,
    "Upsample": _resize,
    "ReduceMean": _reduce,
    "ReduceSum": _reduce,
    "ReduceMax": _reduce,
    "ReduceMin": _reduce,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Expand": _expand,
    "QuantizeLinear": _quantize,
    "BatchNormalization": _batchnorm,
    "Cast": _cast,
    **dict.fromkeys(UNARY, _same),
    **dict.fromkeys(BINARY, _binary),
}


def infer(g: Graph, n: Node) -> list[tuple[Shape, np.dtype]]:
    rule = RULES.get(n.op)
    if rule is None:
        raise BackendError(f"unsupported op {n.op} (node {n.name!r})")
    return rule(g, n)
