"""Elementwise lowering: binary ops with broadcasting (a flat kernel when no index arithmetic is
needed), unary ops, activations, and the QDQ remnants (fake-quant, standalone Q and DQ)."""

from __future__ import annotations

import numpy as np

from yaguar.kernels.opcodes import ACTIVATIONS, BINARY, UNARY

from ...base import BackendError
from ..fusion import activation_of
from ..graph import Node
from ..lower import Lowerer, broadcast_strides, lowering
from .quant import lower_fake_quant


def _contiguous(lw: Lowerer, t: str) -> bool:
    return lw.g.is_const(t) or lw.mem.is_contiguous(t)


@lowering(*BINARY)
def lower_binary(lw: Lowerer, node: Node) -> None:
    if len(node.inputs) != 2 and node.op in ("Max", "Min", "Add", "Mul") and len(node.inputs) > 2:
        raise BackendError(f"{node.op} node {node.name!r}: variadic form with {len(node.inputs)} inputs")
    a, b = node.inputs
    y = node.outputs[0]
    out = lw.shape(y)
    total = int(np.prod(out))
    act = node.fused.get("act1", (0, 0.0, 0.0))
    (abuf, aoff, _), (bbuf, boff, _), (ybuf, yoff, _) = lw.addr(a), lw.addr(b), lw.addr(y)
    tail = [np.float32(act[1]), np.float32(act[2])]
    defs = {"OP": BINARY[node.op], "ACT": act[0]}
    nbytes = float(lw.itemsize * 3 * total)
    same = lw.shape(a) == out and _contiguous(lw, a) and _contiguous(lw, y)
    b_scalar = int(np.prod(lw.shape(b))) == 1
    if same and ((lw.shape(b) == out and _contiguous(lw, b)) or b_scalar):
        k = lw.kernel("eltwise", "binary_flat", defs)
        args = [
            np.int32(total),
            abuf,
            aoff,
            bbuf,
            boff,
            np.int32(0 if b_scalar else 1),
            ybuf,
            yoff,
            *tail,
        ]
        lw.add(node, f"eltwise.{node.op.lower()}", k, args, (total,), total, nbytes)
        return
    k, meta, rng = lw.nd(
        "eltwise",
        "binary",
        list(out),
        lw.strides(y),
        broadcast_strides(lw, a, out),
        broadcast_strides(lw, b, out),
        defines=defs,
    )
    args = [meta, np.int32(total), abuf, aoff, bbuf, boff, ybuf, yoff, *tail]
    lw.add(node, f"eltwise.{node.op.lower()}", k, args, rng, total, nbytes)


def _unary_params(lw: Lowerer, node: Node) -> tuple[int, list[float]]:
    if node.op in UNARY:
        if node.op == "FakeQuant":
            return UNARY[node.op], list(node.attrs["q"])
        if node.op in ("QuantizeLinear", "DequantizeLinear"):
            s = lw.g.const(node.inputs[1])
            z = (
                lw.g.const(node.inputs[2])
                if len(node.inputs) > 2 and node.inputs[2]
                else np.zeros((), np.uint8)
            )
            if s.size != 1 or z.size != 1:
                raise BackendError(f"{node.op} node {node.name!r}: per-channel activations are not supported")
            info = np.iinfo(z.dtype)
            return UNARY[node.op], [
                float(s.reshape(())),
                float(z.reshape(())),
                float(info.min),
                float(info.max),
            ]
        return UNARY[node.op], [0.0, 0.0, 0.0, 0.0]
    act = activation_of(lw.g, node)
    if act is None:
        raise BackendError(f"unsupported op {node.op} (node {node.name!r}): non-constant parameters")
    return act[0], [act[1], act[2], 0.0, 0.0]


@lowering(*UNARY, *[op for op in ACTIVATIONS if op != "None"])
def lower_unary(lw: Lowerer, node: Node) -> None:
    if node.op == "FakeQuant" and len(lw.shape(node.outputs[0])) >= 2:
        return lower_fake_quant(lw, node)
    code, params = _unary_params(lw, node)
    x, y = node.inputs[0], node.outputs[0]
    out = lw.shape(y)
    total = int(np.prod(out))
    # an activation code applies that activation (ACT), any other is a unary op (OP)
    defs = {"OP": code, "ACT": code if code in ACTIVATIONS.values() else 0}
    k, meta, rng = lw.nd(
        "eltwise", "unary", list(out), lw.strides(y), lw.strides(x), lw.strides(x), defines=defs
    )
    (xbuf, xoff, _), (ybuf, yoff, _) = lw.addr(x), lw.addr(y)
    args = [meta, np.int32(total), *map(np.float32, params), xbuf, xoff, ybuf, yoff]
    flops = total * (20 if code in (ACTIVATIONS["Sigmoid"], ACTIVATIONS["SiLU"], ACTIVATIONS["Tanh"]) else 1)
    lw.add(node, f"eltwise.{node.op.lower()}", k, args, rng, flops, float(lw.itemsize * 2 * total))
