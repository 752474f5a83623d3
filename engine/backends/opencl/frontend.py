"""The compiler's front end: ONNX in, a ``graph.Graph`` of static-shape float tensors out.

One forward pass over the (topologically ordered) ONNX nodes folds every node whose inputs are all
constants (weights, QDQ weight dequantisation, Shape/Gather/Concat shape arithmetic: with static
shapes ``Shape`` is a constant too); every other node gets its attributes in one canonical form
(``canonical_attrs``) and then its output shapes from the shape pass (``shapes.infer``), which only
reads the graph. Batch N is planned by giving the input batch N and fixing Reshape targets that baked
the export's batch in.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..base import BackendError
from . import shapes
from .graph import Graph, Node, Quant, Value

log = logging.getLogger(__name__)


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        out[a.name] = v
    return out


def _fold(node: onnx.NodeProto, values: list[np.ndarray | None], opset: int) -> list[np.ndarray]:
    """Evaluate one node on constant inputs (NumPy for the common cases, onnx.reference otherwise)."""
    attrs = _attrs(node)
    first, second = values[0], values[1] if len(values) > 1 else None
    if node.op_type == "DequantizeLinear" and first is not None and second is not None:
        x, s = first.astype(np.float32), second.astype(np.float32)
        z = values[2].astype(np.float32) if len(values) > 2 and values[2] is not None else np.float32(0)
        axis = attrs.get("axis", 1)
        if s.ndim == 1 and x.ndim > 1:
            bshape = [1] * x.ndim
            bshape[axis] = -1
            s, z = s.reshape(bshape), np.asarray(z).reshape(bshape) if np.ndim(z) else z
        return [((x - z) * s).astype(np.float32)]
    if node.op_type == "Shape" and first is not None:
        shape = first.shape[attrs.get("start", 0) : attrs.get("end", len(first.shape))]
        return [np.array(shape, dtype=np.int64)]
    from onnx.reference import ReferenceEvaluator

    names = list(node.input)
    inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
        for n, v in zip(names, values, strict=False)
        if n and v is not None
    ]
    outputs = [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output]
    model = helper.make_model(
        helper.make_graph([node], "fold", inputs, outputs), opset_imports=[helper.make_opsetid("", opset)]
    )
    feeds = {n: v for n, v in zip(names, values, strict=False) if n}
    return list(ReferenceEvaluator(model).run(None, feeds))


_SHAPE_ONLY = {"Shape", "Size"}


def load(model_path: Path | str | onnx.ModelProto, batch: int | None = None) -> Graph:
    """Parse, fold and shape an ONNX model for ``batch`` (None: the model's own batch)."""
    model = model_path if isinstance(model_path, onnx.ModelProto) else read_model(Path(model_path))
    base = _build(model, None, None)
    if batch is None or batch == base.batch:
        return base
    return _build(model, batch, base)


def read_model(path: Path) -> onnx.ModelProto:
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError for bad files
        raise BackendError(f"cannot read ONNX model {path.name}: {str(exc)[:200]}") from None


def _build(model: onnx.ModelProto, batch: int | None, base: Graph | None) -> Graph:
    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    values: dict[str, Value] = {}
    for t in g.initializer:
        arr = numpy_helper.to_array(t)
        values[t.name] = Value(t.name, tuple(arr.shape), arr.dtype, arr)
    inputs, model_batch = _graph_inputs(g, values, batch)
    graph = Graph(values, [], inputs, [o.name for o in g.output], batch or model_batch, opset)
    for index, proto in enumerate(g.node):
        name = proto.name or f"{proto.op_type}_{index}"
        node = Node(proto.op_type, name, list(proto.input), list(proto.output), _attrs(proto), proto)
        if proto.domain not in ("", "ai.onnx"):
            raise BackendError(f"unsupported op {proto.domain}.{proto.op_type} (node {name!r})")
        ins = [values.get(i) for i in node.inputs]
        missing = [i for i, v in zip(node.inputs, ins, strict=True) if i and v is None]
        if missing:
            raise BackendError(f"node {name!r} reads unknown tensor(s) {missing}")
        if node.op == "Constant":
            arr = _constant(node)
            values[node.outputs[0]] = Value(node.outputs[0], tuple(arr.shape), arr.dtype, arr)
            continue
        foldable = all(v is None or v.const is not None for v in ins) or node.op in _SHAPE_ONLY
        if foldable:
            arrays = [
                None if v is None else (v.const if v.const is not None else np.zeros(v.shape, np.float32))
                for v in ins
            ]
            try:
                outs = _fold(proto, arrays, opset)
            except Exception as exc:  # the reference evaluator's own errors: report the node
                raise BackendError(f"cannot fold {node.op} node {name!r}: {str(exc)[:200]}") from None
            for oname, out in zip(node.outputs, outs, strict=False):
                arr = np.asarray(out)
                values[oname] = Value(oname, tuple(arr.shape), arr.dtype, arr)
            if node.op == "DequantizeLinear":
                values[node.outputs[0]].quant = _quant_of(node, arrays)
            continue
        if base is not None and node.op == "Reshape":
            _rebatch_reshape(graph, node, base)
        canonical_attrs(graph, node)
        out_shapes = shapes.infer(graph, node)
        for oname, (shape, dtype) in zip(node.outputs, out_shapes, strict=False):
            if oname:
                values[oname] = Value(oname, tuple(int(d) for d in shape), np.dtype(dtype))
        graph.nodes.append(node)
    for o in graph.outputs:
        if o not in values:
            raise BackendError(f"graph output {o!r} is never produced")
    return graph


def _quant_of(node: Node, arrays: list[np.ndarray | None]) -> Quant | None:
    """The stored integers of a constant DequantizeLinear (None when they are not 8-bit)."""
    q, scale = arrays[0], arrays[1]
    if q is None or scale is None or q.dtype not in (np.int8, np.uint8):
        return None
    zero = arrays[2] if len(arrays) > 2 and arrays[2] is not None else np.zeros((), q.dtype)
    return Quant(q, np.asarray(scale, np.float32), np.asarray(zero), int(node.attrs.get("axis", 1)))


def _graph_inputs(g: onnx.GraphProto, values: dict[str, Value], batch: int | None) -> tuple[list[str], int]:
    """Declare the graph inputs in ``values``; returns their names and the export's batch."""
    inputs = []
    model_batch = None  # the first input's dim 0; other inputs follow it only where they match it
    for vi in g.input:
        if vi.name in values:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        if dims and model_batch is None:
            model_batch = dims[0] or 1
        if dims and (dims[0] is None or dims[0] == model_batch):
            dims[0] = batch if batch is not None else (dims[0] or 1)
        if any(d is None for d in dims):
            raise BackendError(f"input {vi.name!r} has a dynamic dimension other than the batch: {dims}")
        dtype = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
        values[vi.name] = Value(vi.name, tuple(int(d) for d in dims if d is not None), np.dtype(dtype))
        inputs.append(vi.name)
    model_batch = model_batch or 1
    return inputs, model_batch


def _constant(node: Node) -> np.ndarray:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in node.attrs:
            return np.asarray(node.attrs[key])
    raise BackendError(f"Constant node {node.name!r} has no supported value attribute")


def _rebatch_reshape(graph: Graph, node: Node, base: Graph) -> None:
    """A Reshape whose target still names the export's batch (``[1, 85, -1]``, ``[24, 2, 1936]``)
    gets its first dim scaled to the new batch; a target computed from Shape already followed it."""
    target_name = node.inputs[1]
    new_t = graph.values[target_name].const
    old_v = base.values.get(target_name)
    if new_t is None or old_v is None or old_v.const is None:
        return
    old_t = old_v.const
    data_new, data_old = graph.values[node.inputs[0]].shape, base.values[node.inputs[0]].shape
    if (
        np.array_equal(new_t, old_t)
        and len(old_t)
        and old_t[0] > 0
        and data_new[0] * base.batch == data_old[0] * graph.batch
    ):
        fixed = old_t.copy()
        fixed[0] = old_t[0] * graph.batch // base.batch
        alias = f"{target_name}@batch{graph.batch}"
        graph.values[alias] = Value(alias, tuple(fixed.shape), fixed.dtype, fixed)
        node.inputs[1] = alias


def canonical_attrs(graph: Graph, node: Node) -> None:
    """One form for the attributes that later passes read directly: a Transpose's ``perm`` spelt out
    (ONNX's default reverses the axes) and a Concat's ``axis`` counted from the front."""
    rank = len(graph.values[node.inputs[0]].shape) if node.inputs and node.inputs[0] else 0
    if node.op == "Transpose":
        node.attrs["perm"] = list(node.attrs.get("perm", list(range(rank))[::-1]))
    elif node.op == "Concat" and rank:
        node.attrs["axis"] = int(node.attrs["axis"]) % rank
