"""Int8 lowering of QDQ graphs, after ``fusion``: convs whose weights were stored as 8-bit integers
and whose input lies on a quantisation grid become ``ConvQ8`` (kernels/conv2d_q8.cl: 8-bit input,
8-bit weights, int32 sums, requantised in the epilogue), and the tensors between them are stored as
8 bits.

After fusion a QDQ graph has no Q/DQ pairs left: each became a fake-quant, alone (``FakeQuant``)
or in a conv's epilogue (``fq1``/``fq2``). A tensor is *on a grid* (scale, zero point, range) when
its producer ends in such a fake-quant, or is a DequantizeLinear. Each tensor an int8 conv reads
gets an 8-bit twin (``NAME#q8``): written straight by an int8 conv whose epilogue ends on that grid
(``out_q8``), else by a ``Quantize8`` node after its producer. An op with no int8 kernel (a pool,
a Concat, a Resize, an Add on its own, ...) reads the float tensor: where only the 8-bit twin is
written, a ``Dequant8`` node makes it; its output is quantised again where an int8 conv reads it.
That is the per-op fallback: dequantise, float op, quantise. ``plan_int8`` returns the op types
that fell back, for the backend to log once per model.

An int8 tensor is stored as uchar: uint8 as is, int8 shifted by +128 (so one kernel reads both).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .graph import Graph, Node, Value

OPS = ("ConvQ8", "Quantize8", "Dequant8")  # what this pass places (tests/integration/test_opencl_int8.py)
Grid = tuple[float, float, float, float]  # scale, zero point, lowest, highest (as the graph has them)
Q8 = "#q8"
RESHAPES = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")  # ops that keep every value as it is


@dataclass(frozen=True)
class Stored:
    """A grid as the 8-bit storage holds it: zero point and range shifted into 0..255."""

    scale: float
    zero: float
    lo: float
    hi: float

    @classmethod
    def of(cls, grid: Grid) -> Stored:
        s, z, lo, hi = grid
        shift = 128.0 if lo < 0 else 0.0
        return cls(s, z + shift, lo + shift, hi + shift)


def grid_of(g: Graph, prod: dict[str, Node], t: str) -> Grid | None:
    """The quantisation grid every value of tensor ``t`` lies on, or None."""
    p = prod.get(t)
    if p is None:
        return None
    if p.op == "FakeQuant":
        return tuple(p.attrs["q"])
    if p.op in RESHAPES:  # the same values in another shape (MobileNetV2's logits conv reads one)
        return grid_of(g, prod, p.inputs[0])
    if p.op == "Conv":
        f = p.fused
        if "fq2" in f:
            return tuple(f["fq2"])
        if "fq1" in f and not f.get("residual") and f.get("act2", (0,))[0] == 0:
            return tuple(f["fq1"])
        return None
    if p.op == "DequantizeLinear" and all(g.is_const(i) for i in p.inputs[1:3] if i) and len(p.inputs) > 1:
        s = g.const(p.inputs[1])
        z = g.const(p.inputs[2]) if len(p.inputs) > 2 and p.inputs[2] else np.zeros((), np.uint8)
        if s.size != 1 or z.size != 1 or z.dtype not in (np.int8, np.uint8):
            return None
        info = np.iinfo(z.dtype)
        return float(s.reshape(())), float(z.reshape(())), float(info.min), float(info.max)
    return None


def int8_weights(g: Graph, conv: Node) -> str | None:
    """Why ``conv`` cannot run on the int8 kernel from its weights alone, or None when it can."""
    wv = g.values[conv.inputs[1]]
    if wv.quant is None:
        return "weights not stored as 8-bit integers"
    zero = np.asarray(wv.quant.zero).reshape(-1)
    if zero.size > 1 and not np.all(zero == zero[0]):
        return "a zero point per weight channel"
    if wv.quant.scale.size > 1 and wv.quant.axis not in (0, -len(wv.shape)):
        return "weight scales along an axis other than the output channels"
    if int(conv.attrs["strides"][1]) > 2:
        return "x stride over 2"
    return None


def plan_int8(g: Graph) -> dict[str, int]:
    """Rewrite ``g`` in place (see the module docstring). Returns {op type: count} of the ops that
    read an int8 conv's output in float (the per-op fallbacks)."""
    prod, users = g.producer(), g.consumers()
    for n in g.nodes:  # a conv's fused residual is read too
        if n.fused.get("residual"):
            users.setdefault(n.fused["residual"], []).append(n)
    grids = {n.name: grid_of(g, prod, n.inputs[0]) for n in g.nodes if n.op == "Conv"}
    convs = {n.name: n for n in g.nodes if n.op == "Conv" and grids[n.name] and int8_weights(g, n) is None}
    if not convs:
        return {}
    out_grids = {name: grid_of(g, prod, n.outputs[0]) for name, n in convs.items()}

    def reads_8bit(u: Node, t: str) -> bool:  # an int8 conv reading t as its input or residual
        return u.name in convs and (u.inputs[0] == t or u.fused.get("residual") == t)

    fallbacks: dict[str, int] = {}
    for name, conv in convs.items():
        if out_grids[name] is not None:  # an 8-bit result that some op reads in float
            for u in users.get(conv.outputs[0], []):
                if not reads_8bit(u, conv.outputs[0]) and u.op != "Identity":  # (a graph output)
                    fallbacks[u.op] = fallbacks.get(u.op, 0) + 1
    # the tensors that get an 8-bit twin: every int8 conv's input, with its grid
    wanted = {n.inputs[0]: grid for name, n in convs.items() if (grid := grids[name]) is not None}
    added: list[tuple[Node, Node]] = []  # (new node, the node it goes after)
    for t, grid in sorted(wanted.items()):
        stored = Stored.of(grid)
        twin = t + Q8
        g.values[twin] = Value(twin, g.values[t].shape, np.dtype(np.uint8))
        floats = [u for u in users.get(t, []) if not reads_8bit(u, t)]
        producer = prod[t]
        if producer.op == "DequantizeLinear" and not floats and t not in g.outputs:
            # int8 convs read a DequantizeLinear of 8-bit values (a uint8 input): quantise those
            # values as they are (scale 1, zero 0), not their dequantised copy
            producer.op, producer.attrs = "Quantize8", {"q": Stored.of((1.0, 0.0, grid[2], grid[3]))}
            producer.inputs, producer.outputs = producer.inputs[:1], [twin]
            del g.values[t]
        elif producer.name in convs or (producer.op == "FakeQuant" and not floats and t not in g.outputs):
            if producer.name in convs:
                producer.fused["out_q8"] = stored
            else:  # a fake-quant only int8 convs read: quantise to 8 bits instead
                producer.op, producer.attrs = "Quantize8", {"q": stored}
            producer.outputs = [twin]
            if floats or t in g.outputs:
                added.append((Node("Dequant8", t + "/dequant8", [twin], [t], {"q": stored}), producer))
            else:
                del g.values[t]
        else:
            added.append((Node("Quantize8", t + "/quantize8", [t], [twin], {"q": stored}), producer))
        for u in users.get(t, []):
            if u.name in convs and u.inputs[0] == t:
                u.inputs = [twin, *u.inputs[1:]]
            if u.name in convs and u.fused.get("residual") == t:
                u.fused["residual"], u.fused["res_q8"] = twin, stored
    for conv in convs.values():
        conv.op = "ConvQ8"
        conv.attrs["xq"] = Stored.of(wanted[conv.inputs[0].removesuffix(Q8)])
        if "out_q8" in conv.fused:  # the epilogue's last fake-quant becomes the requantisation
            conv.fused.pop("fq2" if "fq2" in conv.fused else "fq1")
    _insert_after(g, added)
    return fallbacks


def _insert_after(g: Graph, added: Sequence[tuple[Node, Node]]) -> None:
    after: dict[str, list[Node]] = {}
    for node, anchor in added:
        after.setdefault(anchor.name, []).append(node)
    nodes: list[Node] = []
    for n in g.nodes:
        nodes.append(n)
        nodes.extend(after.get(n.name, []))
    g.nodes = nodes
