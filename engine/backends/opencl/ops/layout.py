"""Data movement: Transpose, Slice, Split, Concat (inputs that could not be written in place),
Gather with constant indices, constant Pad, Expand, and Reshape-likes of non-contiguous views.
All are one strided N-d copy (``copy.cl``) with the right strides; nothing is computed."""

from __future__ import annotations

import numpy as np

from ...base import BackendError
from .. import shapes
from ..graph import Node
from ..intmath import cdiv
from ..lower import Lowerer, broadcast_strides, collapse, lowering, nd_global
from ..shapes import VIEW_OPS

RUN = 8  # elements per work-item of copy_nd_run


def _const_step(stride: int) -> int:
    """A last-axis stride worth compiling in (1 or 2), else 0: read at run time."""
    return stride if stride in (1, 2) else 0


def copy_view(
    lw: Lowerer,
    node: Node,
    src: str,
    dst: str,
    dims: list[int],
    src_strides: list[int],
    dst_strides: list[int],
    src_extra: int = 0,
    dst_extra: int = 0,
    label: str = "copy",
) -> None:
    total = int(np.prod(dims)) if dims else 1
    if total == 0:
        return
    (sbuf, soff, _), (dbuf, doff, _) = lw.addr(src), lw.addr(dst)
    merged, (dst_m, src_m) = collapse(list(dims) or [1], list(dst_strides) or [1], list(src_strides) or [1])
    if merged[-1] >= RUN:
        # RUN elements of the last axis per work-item (copy_nd_run); unit and step-2 strides of
        # that axis become build-time constants so PoCL emits vector loads / stores.
        defs = {"RUN": RUN, "SRC_STEP": _const_step(src_m[-1]), "DST_STEP": _const_step(dst_m[-1])}
        rng = nd_global(merged)
        rng, lsize = (cdiv(rng[0], RUN), rng[1], rng[2]), None
        if len(merged) <= 3:
            defs["RANK3"] = 1
        elif not lw.is_gpu:  # outer dims need divisions: a CPU work-item per row pays them once
            rng, lsize = (1, rng[1], rng[2]), (1, 1, 1)
        k, meta = lw.kernel("copy", "copy_nd_run", defs), lw.meta(merged, dst_m, src_m)
    else:
        (k, meta, rng), lsize = lw.nd("copy", "copy_nd", dims, dst_strides, src_strides), None
    args = [meta, np.int32(total), sbuf, np.int32(soff + src_extra), dbuf, np.int32(doff + dst_extra)]
    lw.add(node, label, k, args, rng, 0.0, float(2 * lw.itemsize * total), lsize=lsize)


@lowering("Transpose")
def lower_transpose(lw: Lowerer, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    st = lw.strides(x)
    perm = node.attrs["perm"]
    copy_view(lw, node, x, y, list(lw.shape(y)), [st[p] for p in perm], lw.strides(y), label="transpose")


@lowering("Identity", "Cast", *VIEW_OPS)
def lower_reshape_copy(lw: Lowerer, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    if y in lw.mem.alias:
        return  # a view of x: nothing runs
    # y owns contiguous storage (these ops never write views), in x's element order.
    shape = list(lw.shape(x))
    copy_view(lw, node, x, y, shape, lw.strides(x), _contig(tuple(shape)), label="reshape_copy")


@lowering("Slice")
def lower_slice(lw: Lowerer, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    st = lw.strides(x)
    extra = 0
    src = list(st)
    resolved = node.attrs.get("resolved") or {
        a: (s, step) for a, s, _, step in shapes.slice_params(lw.g, node)
    }
    for axis, (start, step) in resolved.items():  # composed with an earlier Slice by fusion.py
        extra += start * st[axis]
        src[axis] = st[axis] * step
    copy_view(lw, node, x, y, list(lw.shape(y)), src, lw.strides(y), src_extra=extra, label="slice")


@lowering("Split")
def lower_split(lw: Lowerer, node: Node) -> None:
    x = node.inputs[0]
    axis = node.attrs.get("axis", 0) % len(lw.shape(x))
    st = lw.strides(x)
    start = 0
    for y, size in zip(node.outputs, shapes.split_sizes(lw.g, node), strict=False):
        if y:
            copy_view(
                lw,
                node,
                x,
                y,
                list(lw.shape(y)),
                st,
                lw.strides(y),
                src_extra=start * st[axis],
                label="split",
            )
        start += size


@lowering("Concat")
def lower_concat(lw: Lowerer, node: Node) -> None:
    y = node.outputs[0]
    axis = node.attrs["axis"]
    yst = lw.strides(y)
    start = 0
    for t in node.inputs:
        length = lw.shape(t)[axis]
        if lw.mem.alias.get(t, (None,))[0] != y:  # not already written in place by its producer
            copy_view(
                lw,
                node,
                t,
                y,
                list(lw.shape(t)),
                lw.strides(t) if not lw.g.is_const(t) else _contig(lw.shape(t)),
                yst,
                dst_extra=start * yst[axis],
                label="concat_copy",
            )
        start += length


def _contig(shape: tuple[int, ...]) -> list[int]:
    st = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        st[i] = st[i + 1] * shape[i + 1]
    return st


@lowering("Gather")
def lower_gather(lw: Lowerer, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    idx = lw.g.const(node.inputs[1]).astype(np.int64)
    xs = lw.shape(x)
    axis = node.attrs.get("axis", 0) % len(xs)
    if idx.size > 64:
        raise BackendError(f"Gather node {node.name!r}: more than 64 constant indices is not supported")
    st = lw.strides(x)
    ys = lw.shape(y)
    yst = _contig(ys)  # Gather outputs are never views (memory.WRITES_VIEWS)
    dims = [d for i, d in enumerate(xs) if i != axis]
    src = [s for i, s in enumerate(st) if i != axis]
    flat = idx.reshape(-1)
    block = int(np.prod(ys[axis + idx.ndim :])) if ys else 1
    for j, raw in enumerate(flat):
        i = int(raw) % xs[axis]
        # output slot j along the (flattened) index dims: every dim before axis keeps its stride.
        dst = [s for k, s in enumerate(yst) if k < axis or k >= axis + idx.ndim]
        copy_view(lw, node, x, y, dims, src, dst, src_extra=i * st[axis], dst_extra=j * block, label="gather")


@lowering("SpaceToDepth")
def lower_space_to_depth(lw: Lowerer, node: Node) -> None:
    """y[n, (i*b + j)*C + c, h, w] = x[n, c, h*b + i, w*b + j] (onnxruntime's graph optimiser makes
    YOLOX's Focus slices into this): one strided copy over (n, i, j, c, h, w)."""
    x, y = node.inputs[0], node.outputs[0]
    b = int(node.attrs["blocksize"])
    n, c, h, w = lw.shape(x)
    xs, ys = lw.strides(x), lw.strides(y)
    ho, wo = h // b, w // b
    dims = [n, b, b, c, ho, wo]
    src = [xs[0], w, 1, h * w, b * w, b]
    dst = [ys[0], b * c * ho * wo, c * ho * wo, ho * wo, wo, 1]
    copy_view(lw, node, x, y, dims, src, dst, label="space_to_depth")


@lowering("Pad")
def lower_pad(lw: Lowerer, node: Node) -> None:
    mode = node.attrs.get("mode", "constant")
    if mode != "constant":
        raise BackendError(f"Pad node {node.name!r}: mode {mode!r} is not supported (constant only)")
    x, y = node.inputs[0], node.outputs[0]
    value = 0.0
    if len(node.inputs) > 2 and node.inputs[2]:
        value = float(lw.g.const(node.inputs[2]).reshape(-1)[0])
    value = float(node.attrs.get("value", value))
    ys = lw.shape(y)
    total = int(np.prod(ys))
    ybuf, yoff, _ = lw.addr(y)
    lw.add(
        node,
        "fill",
        lw.kernel("copy", "fill"),
        [np.int32(total), np.float32(value), ybuf, yoff],
        (total,),
        0.0,
        float(lw.itemsize * total),
    )
    pads = shapes.pad_amounts(lw.g, node)
    yst = lw.strides(y)
    extra = sum(p * s for p, s in zip(pads[: len(ys)], yst, strict=True))
    copy_view(lw, node, x, y, list(lw.shape(x)), lw.strides(x), yst, dst_extra=extra, label="pad_copy")


@lowering("Expand")
def lower_expand(lw: Lowerer, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    out = lw.shape(y)
    copy_view(lw, node, x, y, list(out), broadcast_strides(lw, x, out), lw.strides(y), label="expand")


@lowering("StridedView")
def lower_strided_view(lw: Lowerer, node: Node) -> None:
    """A collapsed chain of data-movement nodes (views.collapse_view_chains), or a Concat of
    Slices (views.concat_of_slices, whose concat axis is split into three): one strided copy from
    the (contiguous) source at element offset + sum(coord * stride)."""
    x, y = node.inputs[0], node.outputs[0]
    dims, dst = list(lw.shape(y)), lw.strides(y)
    if "split" in node.attrs:
        axis, k1, k2 = node.attrs["split"]
        length, st = dims[axis] // (k1 * k2), dst[axis]
        dims[axis : axis + 1] = [k1, k2, length]
        dst[axis : axis + 1] = [k2 * length * st, length * st, st]
    copy_view(
        lw,
        node,
        x,
        y,
        dims,
        node.attrs["strides"],
        dst,
        src_extra=node.attrs["offset"],
        label="strided_copy" if "split" not in node.attrs else "space_to_depth",
    )
