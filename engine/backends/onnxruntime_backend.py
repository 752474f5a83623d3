"""onnxruntime on the CPU: the reference backend, and the fallback when OpenCL is missing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from .base import Backend, BackendError, ModelSource, TensorInfo
from .options import OnnxRuntimeOptions, OptionsInput, options_as

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int64)": np.int64,
    "tensor(float16)": np.float16,
}


class OnnxRuntimeBackend(Backend):
    kind = "onnxruntime"

    def __init__(self, model_path: ModelSource, options: OptionsInput = None) -> None:
        self.options = opts = options_as(OnnxRuntimeOptions, options)
        so = ort.SessionOptions()
        so.intra_op_num_threads = opts.threads or (os.cpu_count() or 1)
        so.log_severity_level = 3
        # Spinning threads burn a core waiting for work; on a station that decodes JPEGs on the other
        # cores at the same time, that costs more than it gains.
        if not opts.allow_spinning:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # A model rewritten in memory (graph_resize: another input size) arrives as a ModelProto.
        source = (
            model_path.SerializeToString() if isinstance(model_path, onnx.ModelProto) else str(model_path)
        )
        name = "the rewritten model" if isinstance(model_path, onnx.ModelProto) else Path(model_path).name
        try:
            self._session = ort.InferenceSession(source, so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise BackendError(f"onnxruntime cannot load {name}: {str(exc)[:200]}") from None

    @property
    def inputs(self) -> list[TensorInfo]:
        return [_info(i) for i in self._session.get_inputs()]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [_info(o) for o in self._session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._session.run(None, feeds)

    def describe(self) -> str:
        return f"onnxruntime {ort.__version__} (CPU)"


def _info(arg: ort.NodeArg) -> TensorInfo:
    return TensorInfo(
        name=arg.name, shape=tuple(arg.shape), dtype=np.dtype(_ORT_TYPES.get(arg.type, np.float32))
    )
