"""The embedding backbone: a stock classifier's ONNX graph cut at its pooled features.

MobileNetV2's last average pool gives 1280 values that describe a crop; a new species head is trained
on them ("imprinting", as Coral's embedding extractor does). The cut keeps the int8 QDQ backbone as it
is, so the exported model (backbone + head) runs wherever the stock classifier runs, onnxruntime and
OpenCL alike. The output is the float value before the pool's re-quantisation: the head sees the
dequantised features, not a second rounding of them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from ..backends import Backend, create_backend
from ..manifest import Manifest, ManifestError, checksum_ok
from ..preprocess import fit, to_tensor

EMBEDDING = "embedding"
POOL_OPS = frozenset({"AveragePool", "GlobalAveragePool"})


def pooled_output(model: onnx.ModelProto) -> str:
    """The name of the last pooling node's output: where the classifier's own head begins."""
    pools = [node for node in model.graph.node if node.op_type in POOL_OPS]
    if not pools:
        raise ManifestError("the backbone has no average-pool layer to cut at")
    return pools[-1].output[0]


def cut_backbone(model: onnx.ModelProto) -> onnx.ModelProto:
    """Input image -> ``embedding`` [batch, features] (float32): everything after the pool is dropped."""
    pooled = pooled_output(model)
    cut = _keep_upstream(model, pooled)
    flatten = helper.make_node("Flatten", [pooled], [EMBEDDING], axis=1, name="yaguar_embedding")
    cut.graph.node.append(flatten)
    del cut.graph.output[:]
    cut.graph.output.append(helper.make_tensor_value_info(EMBEDDING, onnx.TensorProto.FLOAT, None))
    inferred = onnx.shape_inference.infer_shapes(cut)
    size = _embedding_size(inferred)
    del cut.graph.output[:]
    cut.graph.output.append(helper.make_tensor_value_info(EMBEDDING, onnx.TensorProto.FLOAT, [1, size]))
    cut.producer_name = "yaguar"
    return cut


def _keep_upstream(model: onnx.ModelProto, output: str) -> onnx.ModelProto:
    """A copy of the model with only the nodes and weights that ``output`` depends on."""
    producers = {out: node for node in model.graph.node for out in node.output}
    needed, stack, kept = set(), [output], set()
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        node = producers.get(name)
        if node is not None:
            kept.add(id(node))
            stack.extend(i for i in node.input if i)
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    graph = cut.graph
    nodes = [n for n in model.graph.node if id(n) in kept]
    del graph.node[:]
    graph.node.extend(nodes)
    weights = [w for w in model.graph.initializer if w.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(weights)
    del graph.value_info[:]
    del graph.output[:]
    return cut


def _embedding_size(model: onnx.ModelProto) -> int:
    for info in [*model.graph.value_info, *model.graph.output]:
        if info.name == EMBEDDING:
            dims = info.type.tensor_type.shape.dim
            if len(dims) == 2 and dims[1].dim_value > 0:
                return int(dims[1].dim_value)
    raise ManifestError("could not infer the size of the backbone's pooled features")


class Embedder:
    """Embeddings of BGR crops with a backbone manifest's model, on any engine backend."""

    def __init__(
        self,
        manifest: Manifest,
        model_dir: Path,
        backend_kind: str = "onnxruntime",
        backend_options: dict[str, object] | None = None,
    ) -> None:
        path = manifest.model_path(model_dir)
        if not path.is_file():
            raise ManifestError(f"backbone {manifest.ident}: {path} is missing")
        if not checksum_ok(manifest, path):
            raise ManifestError(f"backbone {manifest.ident}: {path.name} does not match its sha256")
        self.manifest = manifest
        self.source = onnx.load(str(path))
        self.model = cut_backbone(self.source)
        self.size = int(self.model.graph.output[0].type.tensor_type.shape.dim[1].dim_value)
        # Backends load from a file; the cut graph lives only as long as it takes to load it.
        with tempfile.TemporaryDirectory(prefix="yaguar-backbone-") as tmp:
            cut_path = Path(tmp) / "backbone.onnx"
            onnx.save(self.model, str(cut_path))
            self.backend: Backend = create_backend(backend_kind, cut_path, backend_options)
        self.input_name = self.backend.inputs[0].name

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """One row of features per crop, float32 [len(crops), size]."""
        rows = [np.zeros((0, self.size), dtype=np.float32)]
        for crop in crops:  # the stock export has a fixed batch of 1
            tensor = to_tensor([fit(crop, self.manifest.input)[0]], self.manifest.input)
            rows.append(np.asarray(self.backend.run({self.input_name: tensor})[0], dtype=np.float32))
        return np.concatenate(rows).reshape(len(crops), self.size)
