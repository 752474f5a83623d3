"""Graph rewrites before lowering: BatchNorm folded into Conv weights, QuantizeLinear ->
DequantizeLinear pairs turned into one fake-quant (fp32 compute, same rounding as the int8 model),
SiLU recognised, and Conv + bias + activation (+ fake-quant) (+ residual Add) (+ activation)
(+ fake-quant) merged into one conv launch with a fused epilogue. The data-movement rewrites
(slices, view chains, concats of slices) live in ``views``.
"""

from __future__ import annotations

import numpy as np

from yaguar.kernels.opcodes import ACTIVATIONS

from ..base import BackendError
from . import views
from .graph import Graph, Node, Value
from .shapes import VIEW_OPS


def optimise(g: Graph) -> None:
    _drop_identities(g)
    views.compose_slices(g)
    views.collapse_view_chains(g)
    views.concat_of_slices(g)
    views.transpose_of_concat(g)
    _cascade_maxpools(g)
    _fold_batchnorm(g)
    _fold_qdq_pairs(g)
    _recognise_silu(g)
    _fuse_conv_epilogues(g)
    _fuse_binary_activation(g)


def _rename_uses(g: Graph, old: str, new: str) -> None:
    for n in g.nodes:
        n.inputs = [new if i == old else i for i in n.inputs]
        if n.fused.get("residual") == old:
            n.fused["residual"] = new


def _drop_identities(g: Graph) -> None:
    keep = []
    for n in g.nodes:
        if n.op in ("Identity", "Dropout") and n.outputs[0] not in g.outputs:
            _rename_uses(g, n.outputs[0], n.inputs[0])
        else:
            keep.append(n)
    g.nodes = keep


def activation_of(g: Graph, n: Node) -> tuple[int, float, float] | None:
    """(code, a, b) when ``n`` is an activation the epilogue can apply, else None."""
    if n.op == "Relu":
        return ACTIVATIONS["Relu"], 0.0, 0.0
    if n.op == "Clip":
        lo, hi = n.attrs.get("min", -np.inf), n.attrs.get("max", np.inf)
        if len(n.inputs) > 1 and n.inputs[1]:
            if not g.is_const(n.inputs[1]):
                return None
            lo = float(g.const(n.inputs[1]))
        if len(n.inputs) > 2 and n.inputs[2]:
            if not g.is_const(n.inputs[2]):
                return None
            hi = float(g.const(n.inputs[2]))
        return ACTIVATIONS["Clip"], float(max(lo, -3.4e38)), float(min(hi, 3.4e38))
    if n.op in ("Sigmoid", "Tanh", "SiLU"):
        return ACTIVATIONS[n.op], 0.0, 0.0
    if n.op == "LeakyRelu":
        return ACTIVATIONS["LeakyRelu"], float(n.attrs.get("alpha", 0.01)), 0.0
    if n.op == "HardSigmoid":
        return ACTIVATIONS["HardSigmoid"], float(n.attrs.get("alpha", 0.2)), float(n.attrs.get("beta", 0.5))
    if n.op == "HardSwish":  # fixed alpha 1/6, beta 0.5
        return ACTIVATIONS["HardSwish"], 1 / 6, 0.5
    return None


def _fold_batchnorm(g: Graph) -> None:
    prod, users = g.producer(), g.consumers()
    keep = []
    for n in g.nodes:
        if n.op != "BatchNormalization":
            keep.append(n)
            continue
        scale, bias, mean, var = (g.const(i).astype(np.float64) for i in n.inputs[1:5])
        k = scale / np.sqrt(var + n.attrs.get("epsilon", 1e-5))
        shift = bias - mean * k
        src = prod.get(n.inputs[0])
        if (
            src is not None
            and src.op == "Conv"
            and len(users[n.inputs[0]]) == 1
            and n.inputs[0] not in g.outputs
        ):
            w = g.const(src.inputs[1]).astype(np.float64)
            b = g.const(src.inputs[2]).astype(np.float64) if len(src.inputs) > 2 and src.inputs[2] else 0.0
            _set_const(g, src.name + "/w_bn", (w * k.reshape(-1, 1, 1, 1)).astype(np.float32))
            _set_const(g, src.name + "/b_bn", (b * k + shift).astype(np.float32))
            src.inputs = [src.inputs[0], src.name + "/w_bn", src.name + "/b_bn"]
            del g.values[src.outputs[0]]
            src.outputs = [n.outputs[0]]
            continue
        rank = len(g.values[n.inputs[0]].shape)
        cshape = (-1,) + (1,) * (rank - 2)
        _set_const(g, n.name + "/k", k.astype(np.float32).reshape(cshape))
        _set_const(g, n.name + "/s", shift.astype(np.float32).reshape(cshape))
        mid = n.name + "/scaled"
        g.values[mid] = Value(mid, g.values[n.inputs[0]].shape, np.dtype(np.float32))
        keep.append(Node("Mul", n.name + "/mul", [n.inputs[0], n.name + "/k"], [mid], {}))
        keep.append(Node("Add", n.name + "/add", [mid, n.name + "/s"], [n.outputs[0]], {}))
    g.nodes = keep


def _set_const(g: Graph, name: str, arr: np.ndarray) -> None:
    g.values[name] = Value(name, tuple(arr.shape), arr.dtype, arr)


def _qparams(g: Graph, n: Node) -> tuple[float, float, float, float]:
    s = g.const(n.inputs[1])
    z = g.const(n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else np.zeros((), np.uint8)
    if s.size != 1 or z.size != 1:
        raise BackendError(
            f"{n.op} node {n.name!r}: per-channel quantisation of activations is not supported"
        )
    info = np.iinfo(z.dtype)
    return float(s.reshape(())), float(z.reshape(())), float(info.min), float(info.max)


def _fold_qdq_pairs(g: Graph) -> None:
    """Q -> (Reshape...) -> DQ with the same scale/zero point becomes FakeQuant -> (Reshape...)."""
    prod, users = g.producer(), g.consumers()
    dropped: set[str] = set()
    for dq in list(g.nodes):
        if dq.op != "DequantizeLinear":
            continue
        cur = prod.get(dq.inputs[0])
        chain = []
        while cur is not None and cur.op in VIEW_OPS and len(users.get(cur.outputs[0], [])) == 1:
            chain.append(cur)
            cur = prod.get(cur.inputs[0])
        if cur is None or cur.op != "QuantizeLinear":
            continue
        if len(users.get(cur.outputs[0], [])) != 1 or any(c.outputs[0] in g.outputs for c in [cur, *chain]):
            continue
        if _qparams(g, cur) != _qparams(g, dq):
            continue
        s, z, lo, hi = _qparams(g, cur)
        cur.op, cur.inputs, cur.attrs = "FakeQuant", cur.inputs[:1], {"q": (s, z, lo, hi)}
        for v in [cur.outputs[0], *(c.outputs[0] for c in chain)]:
            g.values[v].dtype = np.dtype(np.float32)
        if dq.outputs[0] in g.outputs:
            dq.op, dq.inputs, dq.attrs = "Identity", dq.inputs[:1], {}
        else:
            _rename_uses(g, dq.outputs[0], dq.inputs[0])
            dropped.add(dq.name)
    g.nodes = [n for n in g.nodes if n.name not in dropped]


def _recognise_silu(g: Graph) -> None:
    """Mul(x, Sigmoid(x)) -> SiLU(x) (YOLOv5/v8/X, EfficientNet export SiLU that way)."""
    prod, users = g.producer(), g.consumers()
    dropped: set[str] = set()
    for m in g.nodes:
        if m.op != "Mul" or len(m.inputs) != 2:
            continue
        for a, b in (m.inputs, m.inputs[::-1]):
            s = prod.get(b)
            if (
                s is not None
                and s.op == "Sigmoid"
                and s.inputs[0] == a
                and len(users[b]) == 1
                and b not in g.outputs
            ):
                m.op, m.inputs = "SiLU", [a]
                dropped.add(s.name)
                break
    g.nodes = [n for n in g.nodes if n.name not in dropped]


def _fuse_conv_epilogues(g: Graph) -> None:
    order = {o: i for i, n in enumerate(g.nodes) for o in n.outputs}
    for inp in g.inputs:
        order[inp] = -1
    dropped: set[str] = set()
    for conv in g.nodes:
        if conv.op != "Conv" or conv.name in dropped:
            continue
        f = conv.fused
        f.setdefault("act1", (0, 0.0, 0.0))
        conv_index = order[conv.outputs[0]]
        while True:
            users = g.consumers()
            out = conv.outputs[0]
            nxt = users.get(out, [])
            if len(nxt) != 1 or out in g.outputs:
                break
            n = nxt[0]
            act = activation_of(g, n)
            if act is not None and f["act1"][0] == 0 and "fq1" not in f and "residual" not in f:
                f["act1"] = act
            elif act is not None and ("residual" in f or "fq1" in f) and "act2" not in f and "fq2" not in f:
                f["act2"] = act  # after the residual add, or after fake-quant 1 (QDQ: Conv, Q/DQ, Relu)
            elif n.op == "FakeQuant" and "residual" not in f and "fq1" not in f:
                f["fq1"] = n.attrs["q"]
            elif n.op == "FakeQuant" and ("residual" in f or "act2" in f) and "fq2" not in f:
                f["fq2"] = n.attrs["q"]
            elif n.op == "Add" and "residual" not in f and "act2" not in f:
                other = n.inputs[1] if n.inputs[0] == out else n.inputs[0]
                if (
                    other == out
                    or g.is_const(other)
                    or g.values[other].shape != g.values[out].shape
                    or order.get(other, 10**9) >= conv_index
                ):
                    break
                f["residual"] = other
            else:
                break
            del g.values[out]
            conv.outputs = [n.outputs[0]]
            dropped.add(n.name)
            g.nodes = [x for x in g.nodes if x.name != n.name]


def _fuse_binary_activation(g: Graph) -> None:
    """Add/Mul/... followed by Relu/Clip/... alone: the activation runs in the binary kernel."""
    dropped: set[str] = set()
    users = g.consumers()
    for n in g.nodes:
        if n.op not in ("Add", "Sub", "Mul", "Div", "Max", "Min") or n.name in dropped:
            continue
        nxt = users.get(n.outputs[0], [])
        if len(nxt) != 1 or n.outputs[0] in g.outputs:
            continue
        act = activation_of(g, nxt[0])
        if act is None:
            continue
        n.fused["act1"] = act
        del g.values[n.outputs[0]]
        n.outputs = [nxt[0].outputs[0]]
        dropped.add(nxt[0].name)
        users = g.consumers()
    g.nodes = [n for n in g.nodes if n.name not in dropped]


def _cascade_maxpools(g: Graph) -> None:
    """Stride-1 'same' max pools of sizes 5, 9, 13 on one input (YOLO SPP) become a cascade of
    5x5 pools (SPPF): max over a 9-window is the max of 5-windows of 5-window maxima, exactly,
    borders included (padding is -inf). 25 + 25 + 25 taps per output instead of 25 + 81 + 169."""
    by_input: dict[str, dict[int, Node]] = {}
    for n in g.nodes:
        k = n.attrs.get("kernel_shape", [0, 0])
        if (
            n.op == "MaxPool"
            and len(k) == 2
            and k[0] == k[1]
            and k[0] % 2 == 1
            and list(n.attrs.get("strides", [1, 1])) == [1, 1]
            and list(n.attrs.get("dilations", [1, 1])) == [1, 1]
            and list(n.attrs.get("pads", [0] * 4)) == [k[0] // 2] * 4
            and not n.attrs.get("ceil_mode", 0)
            and n.attrs.get("auto_pad", "NOTSET") == "NOTSET"
        ):
            by_input.setdefault(n.inputs[0], {})[k[0]] = n
    position = {n.name: i for i, n in enumerate(g.nodes)}
    for pools in by_input.values():
        for k, n in sorted(pools.items()):
            prev = pools.get(k - 4)
            if k > 5 and prev is not None and position[prev.name] < position[n.name]:
                n.inputs = [prev.outputs[0]]
                n.attrs.update(kernel_shape=[5, 5], pads=[2, 2, 2, 2])
