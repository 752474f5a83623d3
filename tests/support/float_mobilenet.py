"""A real float classifier for the quantiser's tests: Coral's int8 MobileNetV2 (the shared
``mobilenet_v2_1.0_224_quant.onnx``) with its weights dequantised to float and its activations'
quantise/dequantise steps made identities. It keeps the uint8 RGB input (and so the int8 model's
preprocessing) and gives float probabilities; its top classes are the int8 model's. The ONNX Model
Zoo's float MobileNetV2 (``mobilenet_v2_imagenet_float.toml``) is not in the shared data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from yaguar.engine.classifier import Classifier
from yaguar.engine.int8_manifest import manifest_toml
from yaguar.engine.manifest import Manifest, find_manifest, load_manifest


def _dequantised_weight(node: onnx.NodeProto, stored: dict[str, onnx.TensorProto]) -> onnx.TensorProto:
    q = numpy_helper.to_array(stored[node.input[0]]).astype(np.float32)
    scale = numpy_helper.to_array(stored[node.input[1]]).astype(np.float32)
    zero = numpy_helper.to_array(stored[node.input[2]]).astype(np.float32)
    if scale.size > 1:  # per output channel, along the node's axis
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return numpy_helper.from_array((q - zero) * scale, node.output[0])


def dequantised(src: Path) -> onnx.ModelProto:
    model = onnx.load(str(src))
    graph = model.graph
    stored = {i.name: i for i in graph.initializer}
    raw = {i.name for i in graph.input}  # the uint8 input and what is made from it before dequantising
    nodes: list[onnx.NodeProto] = []
    weights: list[onnx.TensorProto] = []
    for node in graph.node:
        if node.op_type != "DequantizeLinear" and any(i in raw for i in node.input):
            raw.update(node.output)
        if node.op_type == "DequantizeLinear" and node.input[0] in stored:
            weights.append(_dequantised_weight(node, stored))
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear") and node.input[0] not in raw:
            nodes.append(helper.make_node("Identity", [node.input[0]], list(node.output), name=node.name))
        else:
            nodes.append(node)
    used = {i for n in nodes for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.node[:], graph.initializer[:], graph.value_info[:]
    graph.node.extend(nodes)
    graph.initializer.extend(kept + weights)
    graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    onnx.checker.check_model(model)
    return model


def float_mobilenet(models_dir: Path, out: Path) -> Manifest:
    """The float MobileNetV2 and its manifest (labels inline) in ``out``; the manifest, loaded."""
    int8 = find_manifest("mobilenet_v2_imagenet_quant")
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(dequantised(int8.model_path(models_dir)), str(out / "mobilenet_v2_float.onnx"))
    labels = Classifier(int8, models_dir).labels
    manifest = int8.model_copy(
        update={
            "name": "mobilenet_v2_float",
            "description": "Coral's MobileNetV2 1.0 224 ImageNet, weights dequantised to float (tests)",
            "file": "mobilenet_v2_float.onnx",
            "sha256": None,
            "sha256_from": None,
            "source": None,
            "export_command": None,
            "output": int8.output.model_copy(update={"format": "probabilities"}),
            "labels": int8.labels.model_copy(
                update={"file": None, "url": None, "sha256": None, "names": labels}
            ),
        }
    )
    (out / "mobilenet_v2_float.toml").write_text(manifest_toml(manifest))
    return load_manifest(out / "mobilenet_v2_float.toml")
