"""Graph rewrites of pure data movement (run by ``fusion.optimise`` before the compute fusions):
Slice-of-Slice composition, chains of Reshape/Transpose/Gather/Slice whose element map is affine,
and Concats of Slices that are one affine view, each becoming one strided copy; then the nodes
left unread are dropped. An element map is found by pushing an array of source element indices
through the nodes with NumPy and checking it against offset + sum(coord * stride)."""

from __future__ import annotations

import numpy as np

from .graph import Graph, Node, Value
from .shapes import VIEW_OPS


def _sole_source(
    g: Graph, prod: dict[str, Node], users: dict[str, list[Node]], t: str, op: str
) -> Node | None:
    """The node that makes ``t`` when it is an ``op`` and ``t`` has one reader and is no graph
    output (so a rewrite may fold the two nodes together), else None."""
    src = prod.get(t)
    if src is None or src.op != op or len(users[t]) != 1 or t in g.outputs:
        return None
    return src


def compose_slices(g: Graph) -> None:
    """Slice of a Slice (YOLOX's Focus: ``x[..., ::2, :]`` then ``[..., ::2]``) becomes one strided
    copy from the original tensor: start = s1 + s2 * step1, step = step1 * step2."""
    from .shapes import slice_params

    prod, users = g.producer(), g.consumers()
    dropped: set[str] = set()
    for n in g.nodes:
        if n.op != "Slice":
            continue
        n.attrs["resolved"] = {a: (s, st) for a, s, _, st in slice_params(g, n)}
        src = _sole_source(g, prod, users, n.inputs[0], "Slice")
        if src is None or src.name in dropped:
            continue
        outer = src.attrs["resolved"]
        merged = dict(outer)
        for axis, (s2, st2) in n.attrs["resolved"].items():
            s1, st1 = outer.get(axis, (0, 1))
            merged[axis] = (s1 + s2 * st1, st1 * st2)
        n.attrs["resolved"] = merged
        n.inputs = [src.inputs[0]]
        del g.values[src.outputs[0]]
        dropped.add(src.name)
    g.nodes = [n for n in g.nodes if n.name not in dropped]


_CHAIN_OPS = VIEW_OPS | {"Transpose", "Gather", "Slice"}


def _chain_link(g: Graph, n: Node) -> bool:
    if n.op == "Gather":
        return g.is_const(n.inputs[1]) and g.const(n.inputs[1]).ndim == 0
    return n.op in _CHAIN_OPS


def _trace(g: Graph, n: Node, idx: np.ndarray) -> np.ndarray:
    """Apply one data-movement node to an array of source element indices."""
    if n.op == "Transpose":
        return idx.transpose(n.attrs["perm"])
    if n.op == "Gather":
        return np.take(idx, int(g.const(n.inputs[1])), axis=n.attrs.get("axis", 0))
    if n.op == "Slice":
        sl = [slice(None)] * idx.ndim
        for axis, (start, step) in n.attrs["resolved"].items():
            length = g.values[n.outputs[0]].shape[axis]
            sl[axis] = slice(start, start + step * length if start + step * length >= 0 else None, step)
        return idx[tuple(sl)]
    return idx.reshape(g.values[n.outputs[0]].shape)


def collapse_view_chains(g: Graph) -> None:
    """A chain of Reshape/Transpose/Gather(scalar)/Slice... (ShuffleNet's channel shuffle:
    Reshape -> Transpose -> Reshape -> Gather) whose element map is affine becomes one strided
    copy from the chain's source: the map is found by pushing an array of element indices through
    the chain with NumPy and checking it against offset + sum(coord * stride)."""
    prod = g.producer()
    for n in reversed(g.nodes):  # consumers first: a chain reaches back to the real source
        if not _chain_link(g, n) or n.op in VIEW_OPS:
            continue  # chains are collapsed from their last real movement (a pure reshape is a view)
        chain, src = [n], n.inputs[0]
        while src in prod and _chain_link(g, prod[src]) and src not in g.outputs:
            chain.insert(0, prod[src])
            src = prod[src].inputs[0]
        if len(chain) < 2 or g.is_const(src):
            continue
        shape = g.values[src].shape
        idx = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
        for link in chain:
            idx = _trace(g, link, idx)
        strides = _affine_strides(idx)
        if strides is None:
            continue
        n.op, n.inputs = "StridedView", [src]
        n.attrs = {"offset": int(idx.reshape(-1)[0]) if idx.size else 0, "strides": strides}
    drop_dead(g)


def concat_of_slices(g: Graph) -> None:
    """A Concat of equal Slices of one tensor whose element map is affine once the concat axis is
    split into (k1, k2, slice length) becomes one strided copy (YOLOX's Focus: four step-2 Slices
    and their Concat are one space-to-depth launch that reads the image once, not four)."""
    prod, users = g.producer(), g.consumers()
    for n in g.nodes:
        if n.op != "Concat" or len(n.inputs) < 2:
            continue
        srcs = [prod[t] for t in n.inputs if t in prod]
        if len(srcs) != len(n.inputs) or any(
            s.op != "Slice" or len(users[s.outputs[0]]) != 1 or s.outputs[0] in g.outputs for s in srcs
        ):
            continue
        x = srcs[0].inputs[0]
        out = g.values[n.outputs[0]].shape
        axis = n.attrs["axis"] % len(out)
        length = g.values[srcs[0].outputs[0]].shape[axis]
        if g.is_const(x) or any(
            s.inputs[0] != x or g.values[s.outputs[0]].shape[axis] != length for s in srcs
        ):
            continue
        shape = g.values[x].shape
        base = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
        idx = np.concatenate([_trace(g, s, base) for s in srcs], axis=axis)
        k = len(srcs)
        for k1 in (d for d in range(1, k + 1) if k % d == 0):
            split = (*out[:axis], k1, k // k1, length, *out[axis + 1 :])
            strides = _affine_strides(idx.reshape(split))
            if strides is not None:
                n.op, n.inputs = "StridedView", [x]
                n.attrs = {
                    "offset": int(idx.reshape(-1)[0]),
                    "strides": strides,
                    "split": (axis, k1, k // k1),
                }
                break
    drop_dead(g)


def transpose_of_concat(g: Graph) -> None:
    """A Transpose that alone reads a Concat becomes a Concat of Transposes (along the permuted
    axis): each Transpose then writes its rows straight into its slice of the output (memory.py's
    concat in place). YOLOX's head concatenates its three scales along the pixel axis and
    transposes to (N, pixels, 85): three copies into a temporary and a transpose of it become
    three transposes into the output."""
    prod, users = g.producer(), g.consumers()
    for t in [n for n in g.nodes if n.op == "Transpose"]:
        cat = _sole_source(g, prod, users, t.inputs[0], "Concat")
        if cat is None or any(g.is_const(i) for i in cat.inputs):
            continue
        perm = list(t.attrs["perm"])
        rank = len(perm)
        parts = []
        for i, x in enumerate(cat.inputs):
            name = f"{t.outputs[0]}@part{i}"
            shape = g.values[x].shape
            g.values[name] = Value(name, tuple(shape[p] for p in perm), g.values[x].dtype)
            parts.append(Node("Transpose", f"{t.name}@part{i}", [x], [name], {"perm": perm}))
        del g.values[cat.outputs[0]]
        cat.inputs, cat.outputs = [p.outputs[0] for p in parts], [t.outputs[0]]
        cat.attrs = {**cat.attrs, "axis": perm.index(cat.attrs["axis"] % rank)}
        at = g.nodes.index(cat)
        g.nodes = [n for n in g.nodes[:at] if n is not t] + parts + [n for n in g.nodes[at:] if n is not t]


def _affine_strides(idx: np.ndarray) -> list[int] | None:
    if idx.size == 0:
        return None
    base = idx.reshape(-1)[0]
    strides = []
    for d in range(idx.ndim):
        if idx.shape[d] > 1:
            strides.append(int(np.take(idx, 1, axis=d).reshape(-1)[0] - base))
        else:
            strides.append(0)
    grid = np.indices(idx.shape, dtype=np.int64) if idx.ndim else np.zeros((0,), np.int64)
    predicted = base + sum(grid[d] * strides[d] for d in range(idx.ndim))
    return strides if np.array_equal(predicted, idx) else None


def drop_dead(g: Graph) -> None:
    """Remove nodes none of whose outputs is read (after rewrites bypassed them)."""
    while True:
        users = g.consumers()
        dead = {
            n.name
            for n in g.nodes
            if all(not o or (o not in users and o not in g.outputs) for o in n.outputs)
            and not any(o in (m.fused.get("residual") for m in g.nodes) for o in n.outputs)
        }
        if not dead:
            return
        for n in g.nodes:
            if n.name in dead:
                for o in n.outputs:
                    g.values.pop(o, None)
        g.nodes = [n for n in g.nodes if n.name not in dead]
