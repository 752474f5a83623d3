"""Graph rewrites, exact in float, that make a detector's int8 graph cheaper for onnxruntime.

``stem_as_one_conv`` applies the first two to YOLOX's Focus stem: together 8 % of the float model's
time on onnxruntime at batch 8, and in the int8 graph they leave onnxruntime no float op before the
stem conv; ``for_onnxruntime`` adds ``head_rows_last`` (measured in engine/README.md, "Issue 19,
06:40-07:22 UTC").

- ``fold_input_gather``: onnxruntime's pre-processing turns YOLOX's Focus stem (four strided Slices
  and a Concat) into SpaceToDepth and a Gather that puts the channels in the Concat's order. The
  stem conv can read SpaceToDepth's order instead, with its weights' input channels permuted, and
  the Gather (a copy of the full-resolution input: 1.7 ms of onnxruntime's batch-8 run) goes.
- ``head_rows_last``: YOLOX's head concatenates each scale's [N, 85, H, W] maps, flattens them to
  [N, 85, H*W], concatenates the scales and transposes the result to [N, anchors, 85]. onnxruntime
  runs its int8 convs channels-last (NHWC), so each head conv's output is transposed to NCHW for the
  Concat, and the whole result transposed back. Transposing each scale to [N, H, W, 85] first and
  flattening that gives the same output, and onnxruntime's transpose optimiser then cancels the
  layout Transposes against the new ones: none is left in the head.
- ``fold_space_to_depth``: SpaceToDepth (onnxruntime has no uint8 kernel for it in a QDQ graph, so
  it ran in float: 5 ms of the batch-8 run) and the "same" conv after it are one conv with a
  larger kernel and stride, as YOLOv5 replaced its Focus layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx.shape_inference
from onnx import numpy_helper


def fold_input_gather(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` where each Gather of a constant channel permutation (axis 1) that only
    convs read is folded into those convs' weights (input channel ``idx[i]`` takes the weights of
    channel ``i``); the model itself is left as it is."""
    out, weights, consumers = _copy(model)
    g = out.graph
    folded = []
    for n in g.node:
        axis = next((int(onnx.helper.get_attribute_value(a)) for a in n.attribute if a.name == "axis"), 0)
        if n.op_type != "Gather" or axis != 1 or n.input[1] not in weights:
            continue
        idx = numpy_helper.to_array(weights[n.input[1]]).astype(np.int64)
        readers = consumers.get(n.output[0], [])
        if idx.ndim != 1 or sorted(idx.tolist()) != list(range(len(idx))) or not readers:
            continue
        if any(
            r.op_type != "Conv" or r.input[0] != n.output[0] or r.input[1] not in weights for r in readers
        ):
            continue
        for r in readers:
            w = numpy_helper.to_array(weights[r.input[1]])
            permuted = np.empty_like(w)
            permuted[:, idx] = w
            name = f"{r.input[1]}_gather_folded"
            g.initializer.append(numpy_helper.from_array(permuted, name))
            r.input[0], r.input[1] = n.input[0], name
        folded.append(n)
    for n in folded:
        g.node.remove(n)
    _drop_unused(g)
    return out


def stem_as_one_conv(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with a SpaceToDepth (+ channel Gather) stem folded into the conv after it."""
    return fold_space_to_depth(fold_input_gather(model))


def for_onnxruntime(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with both of its ends rewritten: ``stem_as_one_conv`` and ``head_rows_last``."""
    return head_rows_last(stem_as_one_conv(model))


def _copy(
    model: onnx.ModelProto,
) -> tuple[onnx.ModelProto, dict[str, onnx.TensorProto], dict[str, list[onnx.NodeProto]]]:
    """A copy of ``model`` to rewrite, its initializers by name and each tensor's readers."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in out.graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    return out, {i.name: i for i in out.graph.initializer}, consumers


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def fold_space_to_depth(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` where SpaceToDepth(b) followed by a "same" conv (k x k, k = 2p + 1,
    stride 1, pads p) that alone reads it becomes one conv on the input: kernel k*b, stride b, pads
    p*b (the same sums over the same pixels, the zero padding included), as YOLOv5 replaced its
    Focus layer. The model itself is left as it is."""
    out, weights, consumers = _copy(model)
    g = out.graph
    folded = []
    for n in g.node:
        readers = consumers.get(n.output[0], []) if n.op_type == "SpaceToDepth" else []
        if len(readers) != 1 or readers[0].op_type != "Conv" or readers[0].input[1] not in weights:
            continue
        conv, b = readers[0], int(_attrs(n)["blocksize"])
        a = _attrs(conv)
        w = numpy_helper.to_array(weights[conv.input[1]])
        k, p = w.shape[2], (w.shape[2] - 1) // 2
        same = w.shape[2] == w.shape[3] == 2 * p + 1 and list(a.get("pads", [0] * 4)) == [p] * 4
        plain = all(list(a.get(key, [1, 1])) == [1, 1] for key in ("strides", "dilations"))
        if not (same and plain and int(a.get("group", 1)) == 1 and a.get("auto_pad", b"NOTSET") == b"NOTSET"):
            continue
        c = w.shape[1] // (b * b)
        # S2D channel (dy * b + dx) * c + ch holds x[ch, b*i + dy, b*j + dx]
        blocks = w.reshape(w.shape[0], b, b, c, k, k)  # [o, dy, dx, ch, ki, kj]
        big = blocks.transpose(0, 3, 4, 1, 5, 2).reshape(
            w.shape[0], c, k * b, k * b
        )  # [o, ch, ki*b+dy, kj*b+dx]
        name = f"{conv.input[1]}_space_to_depth_folded"
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(big), name))
        conv.input[0], conv.input[1] = n.input[0], name
        del conv.attribute[:]
        conv.attribute.extend(
            [
                onnx.helper.make_attribute("kernel_shape", [k * b, k * b]),
                onnx.helper.make_attribute("strides", [b, b]),
                onnx.helper.make_attribute("pads", [p * b] * 4),
            ]
        )
        folded.append(n)
    for n in folded:
        g.node.remove(n)
    _drop_unused(g)
    return out


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove the initializers that no node reads any more (the weights before a fold)."""
    used = {t for n in graph.node for t in n.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


def head_rows_last(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` where a graph output made by Transpose([0, 2, 1]) of a Concat (axis 2) of
    Reshapes of 4-D maps to [N, C, -1] is made per map instead: Transpose([0, 2, 3, 1]), Reshape to
    [N, -1, C], Concat on axis 1. The same values in the same places; the model itself is left as it
    is. N is the export's own (YOLOX's has the batch fixed at 1 there), so whatever runs the export
    at another batch (the OpenCL planner, bench/engine.py's re-batched copies, torch_graph.py) fixes
    the new targets as it fixes the old ones."""
    out, weights, consumers = _copy(model)
    g = out.graph
    producer = {t: n for n in g.node for t in n.output}
    inferred = onnx.shape_inference.infer_shapes(out).graph
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in [*inferred.value_info, *inferred.input]}
    for last in [n for n in g.node if n.op_type == "Transpose" and n.output[0] in {o.name for o in g.output}]:
        concat = producer.get(last.input[0])
        if _attrs(last).get("perm") != [0, 2, 1] or concat is None or concat.op_type != "Concat":
            continue
        flats = [producer[t] for t in concat.input if t in producer and producer[t].op_type == "Reshape"]
        targets = [
            numpy_helper.to_array(weights[f.input[1]]).tolist() for f in flats if f.input[1] in weights
        ]
        if (
            _attrs(concat).get("axis") not in (2, -1)
            or len(targets) != len(flats)
            or len(flats) != len(concat.input)
            or any(len(consumers[f.output[0]]) != 1 or ranks.get(f.input[0]) != 4 for f in flats)
            or any(len(t) != 3 or t[2] != -1 or t[:2] != targets[0][:2] for t in targets)
        ):
            continue
        shape = f"{last.output[0]}_rows_shape"
        g.initializer.append(
            numpy_helper.from_array(np.array([targets[0][0], -1, targets[0][1]], np.int64), shape)
        )
        new = []
        for f in flats:
            rows = f"{f.output[0]}_rows"
            new += [
                onnx.helper.make_node(
                    "Transpose", [f.input[0]], [f"{rows}_nhwc"], f"{f.name}_nhwc", perm=[0, 2, 3, 1]
                ),
                onnx.helper.make_node("Reshape", [f"{rows}_nhwc", shape], [rows], f"{f.name}_rows"),
            ]
        rows_out = [f"{f.output[0]}_rows" for f in flats]
        new.append(onnx.helper.make_node("Concat", rows_out, [last.output[0]], f"{concat.name}_rows", axis=1))
        gone = {last.name, concat.name, *(f.name for f in flats)}
        kept = [n for n in g.node if n.name not in gone]
        del g.node[:]
        g.node.extend(kept + new)
    _drop_unused(g)
    return out
