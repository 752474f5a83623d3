"""The compiler's intermediate form: a static-shape graph of tensors (``Value``) and ops (``Node``).

``frontend`` builds it from ONNX, ``shapes`` gives every tensor its shape, ``fusion``/``views`` rewrite
it, ``memory`` places its tensors and ``lower``/``ops`` turn its nodes into kernel launches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from ..base import BackendError


@dataclass
class Quant:
    """How a constant was stored before the front end dequantised it (the weights of QDQ graphs):
    the stored integers, the scale and zero point (one, or one per slice along ``axis``)."""

    q: np.ndarray
    scale: np.ndarray
    zero: np.ndarray
    axis: int


@dataclass
class Value:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    const: np.ndarray | None = None
    quant: Quant | None = None  # a folded DequantizeLinear's integers (int8 kernels read them)


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    proto: onnx.NodeProto | None = None
    fused: dict[str, Any] = field(default_factory=dict)  # epilogue pieces merged in by fusion.py


@dataclass
class Graph:
    values: dict[str, Value]
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    batch: int
    opset: int

    def producer(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        users: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    users.setdefault(i, []).append(n)
        return users

    def is_const(self, name: str) -> bool:
        return bool(name) and self.values[name].const is not None

    def const(self, name: str) -> np.ndarray:
        value = self.values[name].const
        if value is None:
            raise BackendError(f"tensor {name!r} must be a constant")
        return value
