"""Where every tensor lives: views and the memory plan.

A tensor either owns storage (a *root*) or is a *view* of another tensor: a Reshape of a contiguous
tensor, or a Concat input whose producer writes straight into its slice of the Concat's output (so
no copy runs). Views here are always batch-strided: dims after the first are contiguous, the batch
dim may have a larger stride (a channel slice of a concat), which every NCHW kernel accepts.
Roots get offsets in one device pool; two roots share bytes when their lifetimes do not overlap
(greedy first-fit, largest first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import Graph, Node
from .intmath import round_up
from .shapes import BINARY, UNARY, VIEW_OPS

ALIGN = 32  # elements; keeps every tensor on a 128-byte boundary

# Ops whose lowering writes an output view with any batch stride / reads input views that way: every
# elementwise op (all but the unary ops that are not kernels of their own), plus these.
WRITES_VIEWS = (
    BINARY
    | (UNARY - {"Identity", "Dropout", "Softmax", "LogSoftmax"})
    | {"QuantizeLinear", "Conv", "MaxPool", "AveragePool", "Resize", "Upsample", "GlobalAveragePool"}
    | {"GlobalMaxPool", "Transpose", "Slice", "Concat", "Split", "Expand", "StridedView"}
    | {"ConvQ8", "Quantize8", "Dequant8", "ConvQ8DwPw"}  # int8 ops (their 8-bit tensors are never views)
)
# A StridedView's element map was computed for a contiguous source, so it cannot read a view.
READS_VIEWS = WRITES_VIEWS - {"StridedView"}


@dataclass
class View:
    root: str
    offset: int  # elements from the root's start
    bstride: int  # elements between batch items


class MemoryPlan:
    def __init__(self, g: Graph) -> None:
        self.g = g
        self.alias: dict[str, tuple[str, int]] = {}  # tensor -> (parent, element offset in parent)
        self.offsets: dict[str, int] = {}
        self.size = 0
        self._plan_concat_slices()
        self._plan_reshape_views()

    def numel(self, name: str) -> int:
        return int(np.prod(self.g.values[name].shape))

    def inner(self, name: str) -> int:
        shape = self.g.values[name].shape
        return int(np.prod(shape[1:])) if shape else 1

    def _plan_concat_slices(self) -> None:
        g = self.g
        prod, users = g.producer(), g.consumers()
        for n in reversed(g.nodes):
            if n.op != "Concat" or n.attrs["axis"] > 1:
                continue
            out_shape = g.values[n.outputs[0]].shape
            inner = int(np.prod(out_shape[n.attrs["axis"] + 1 :]))
            start = 0
            for t in n.inputs:
                length = g.values[t].shape[n.attrs["axis"]]
                if self._can_alias(t, n, prod, users):
                    self.alias[t] = (n.outputs[0], start * inner)
                start += length

    def _can_alias(self, t: str, concat: Node, prod: dict[str, Node], users: dict[str, list[Node]]) -> bool:
        g = self.g
        src = prod.get(t)
        if src is None or src.op not in WRITES_VIEWS or t in g.outputs or t in self.alias:
            return False
        if concat.inputs.count(t) != 1:
            return False
        return all(u is concat or u.op in READS_VIEWS for u in users.get(t, []))

    def _plan_reshape_views(self) -> None:
        for n in self.g.nodes:
            if n.op in VIEW_OPS and self.is_contiguous(n.inputs[0]):
                self.alias[n.outputs[0]] = (n.inputs[0], 0)

    def is_contiguous(self, name: str) -> bool:
        v = self.view(name)
        return v.bstride == self.inner(name) or self.g.values[name].shape[:1] == (1,)

    def view(self, name: str) -> View:
        if name not in self.alias:
            return View(name, 0, self.inner(name))
        parent, off = self.alias[name]
        pv = self.view(parent)
        shape = self.g.values[name].shape
        if shape[:1] == self.g.values[parent].shape[:1] and len(shape) > 0:
            return View(pv.root, pv.offset + off, pv.bstride)
        return View(pv.root, pv.offset + off, self.inner(name))  # a reshape that moved the batch dim

    def plan(self, order: list[Node], keep: set[str]) -> None:
        """Assign pool offsets to every root from its lifetime over ``order``."""
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for i, n in enumerate(order):
            reads = [*n.inputs, *([n.fused["residual"]] if n.fused.get("residual") else [])]
            for t in reads:
                if t and not self.g.is_const(t):
                    r = self.view(t).root
                    last[r] = i
                    first.setdefault(r, i)
            for t in n.outputs:
                if t:
                    r = self.view(t).root
                    first.setdefault(r, i)
                    last[r] = max(last.get(r, i), i)
        for t in self.g.inputs:
            first[t] = -1
        for t in keep:
            last[self.view(t).root] = len(order)
        roots = sorted(first, key=lambda r: -self.numel(r))
        placed: list[tuple[int, int, int, int]] = []  # offset, end, first, last
        for r in roots:
            size = round_up(self.numel(r), ALIGN)
            lo, hi = first[r], last.get(r, first[r])
            busy = sorted((o, e) for o, e, f, la in placed if not (la < lo or f > hi))
            offset = 0
            for o, e in busy:
                if offset + size <= o:
                    break
                offset = max(offset, e)
            placed.append((offset, offset + size, lo, hi))
            self.offsets[r] = offset
        self.size = max((e for _, e, _, _ in placed), default=ALIGN)

    def address(self, name: str) -> tuple[int, int]:
        """(element offset in the pool, batch stride) of a tensor."""
        v = self.view(name)
        return self.offsets[v.root] + v.offset, v.bstride
