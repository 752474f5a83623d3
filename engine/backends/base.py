"""The inference backend interface: an ONNX model in, NumPy arrays out.

Backends are found by a registry (``registry.py``) keyed by ``kind``; the engine never imports a
backend module directly, so a station without pyopencl still starts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx

# A model file, or a model rewritten in memory (graph_resize.py: another input size).
ModelSource = Path | onnx.ModelProto


class BackendError(RuntimeError):
    """A model cannot run on a backend (unsupported op, no device, bad file); the message says why."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | str | None, ...]  # a str or None is a dynamic dimension (e.g. batch)
    dtype: np.dtype


class Backend(ABC):
    """One loaded model on one backend. Not thread-safe: give each worker thread its own."""

    kind: ClassVar[str]

    @abstractmethod
    def __init__(self, model_path: ModelSource, options: Any = None) -> None:
        """``options``: the backend's own options model (``options.py``) or a dict of its keys."""

    @property
    @abstractmethod
    def inputs(self) -> list[TensorInfo]: ...

    @property
    @abstractmethod
    def outputs(self) -> list[TensorInfo]: ...

    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run the model on one batch; returns the outputs in model order."""

    def describe(self) -> str:
        """One line naming the backend and its device, for logs and benchmark output."""
        return self.kind
