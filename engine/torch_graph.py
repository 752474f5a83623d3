"""An ONNX detector graph run by torch, so that its weights can be trained: the float graph as the
teacher, and the QDQ graph that ``yaguar models quantize`` makes as the student, its Quantize/
DequantizeLinear pairs turned into fake quantisation (``quantize_finetune``).

Only the ops of the detectors we quantise are here (YOLOX as onnxruntime's pre-processing leaves it:
Conv, SiLU as Sigmoid and Mul, Add, Concat, MaxPool, nearest Resize, SpaceToDepth and Gather for the
Focus stem, the head's Reshape and Transpose); another op is refused by name. The fake quantisation
is where the QDQ graph puts it, with onnxruntime's rounding:

- an activation's QuantizeLinear then DequantizeLinear: uint8 with the graph's calibrated scale and
  zero point (``torch.fake_quantize_per_tensor_affine``: the straight-through estimator, no gradient
  where it clamps);
- a conv weight's DequantizeLinear of int8 values: the float weight being trained, rounded per output
  channel to int8 on the grid onnxruntime will give it (symmetric, scale = max |w| / 127), so the
  rounding follows the weight as it moves;
- a bias's DequantizeLinear of int32 values: the float bias (its int32 step, input scale x weight
  scale, is far below anything int8 changes).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch.nn import functional as fn

WEIGHT_QMAX = 127  # onnxruntime's symmetric int8 weights: -127..127
QUANTIZED = "_quantized"  # onnxruntime's suffix for a quantised initializer


class UnsupportedGraphError(ValueError):
    """The graph has an op this runner does not know; the message names it."""


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pads(pads: list[int]) -> list[int]:
    """ONNX pads (begin of each axis, then end of each) as fn.pad's (last axis first)."""
    half = len(pads) // 2
    out: list[int] = []
    for axis in reversed(range(half)):
        out += [pads[axis], pads[axis + half]]
    return out


class TorchGraph(torch.nn.Module):
    """``model`` (float or QDQ) as a torch module whose float conv weights and biases are parameters,
    named as the float graph names them (``float_name``), so that trained values go back into it."""

    def __init__(self, model: onnx.ModelProto, start: dict[str, np.ndarray] | None = None) -> None:
        """``start``: float values of the weights by their float names (the float graph's
        initializers); without it a QDQ graph's weights start from their int8 values."""
        super().__init__()
        self.graph = model.graph
        self.consts: dict[str, torch.Tensor] = {
            i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer
        }
        producer = {t: n for n in model.graph.node for t in n.output}
        self.params = torch.nn.ParameterDict()
        self.names: dict[str, str] = {}  # parameter key -> float initializer name
        for node in model.graph.node:
            for tensor in node.input[1:3] if node.op_type == "Conv" else []:
                made = producer.get(tensor)
                if made is not None and made.op_type == "DequantizeLinear" and made.input[0] in self.consts:
                    name, value = float_name(made.input[0]), self._dequantize(made)
                elif tensor in self.consts:
                    name, value = tensor, self.consts[tensor].float()
                else:
                    continue
                if start is not None and name in start:
                    value = torch.from_numpy(start[name].astype(np.float32))
                self._param(name, value)
        self.output = model.graph.output[0].name

    def _param(self, name: str, value: torch.Tensor) -> None:
        """The parameter is the change from ``value`` in units of its int8 step: per output channel for
        a weight (max |w| / 127), per tensor for a bias. A plain step of Adam moves every value by
        about the same amount, and a channel of tiny weights (common after BatchNorm is folded in)
        would change many times over; in steps, each channel moves in proportion to its size."""
        key = f"p{len(self.names)}"  # ParameterDict keys may not hold dots
        axes = tuple(range(1, value.dim())) if value.dim() > 1 else (0,)
        unit = (value.abs().amax(dim=axes, keepdim=True) / WEIGHT_QMAX).clamp_min(1e-12)
        self.register_buffer(f"{key}_base", value.clone())
        self.register_buffer(f"{key}_unit", unit)
        self.params[key] = torch.nn.Parameter(torch.zeros_like(value))
        self.names[key] = name

    def value(self, key: str) -> torch.Tensor:
        return self.get_buffer(f"{key}_base") + self.get_buffer(f"{key}_unit") * self.params[key]

    def trained(self) -> dict[str, np.ndarray]:
        """The weights' current values, by their float graph names."""
        return {name: self.value(key).detach().numpy().copy() for key, name in self.names.items()}

    def _dequantize(self, node: onnx.NodeProto) -> torch.Tensor:
        q, scale = self.consts[node.input[0]].double(), self.consts[node.input[1]].double()
        zero = self.consts[node.input[2]].double() if len(node.input) > 2 else torch.zeros_like(scale)
        axis = min(int(_attrs(node).get("axis", 1)), q.dim() - 1)  # type: ignore[call-overload]
        if scale.dim():
            shape = [1] * q.dim()
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        return ((q - zero) * scale).float()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        by_name = {name: self.value(key) for key, name in self.names.items()}
        values: dict[str, torch.Tensor] = {self.graph.input[0].name: images}
        for node in self.graph.node:
            inputs = [values.get(t, by_name.get(t, self.consts.get(t))) if t else None for t in node.input]
            if node.op_type == "DequantizeLinear" and node.input[0] in self.consts:
                out = self._weight(node, by_name)
            else:
                op = OPS.get(node.op_type)
                if op is None:
                    raise UnsupportedGraphError(
                        f"op {node.op_type} ({node.name}) is not supported for fine-tuning"
                    )
                out = op(inputs, _attrs(node))
            values[node.output[0]] = out
        return values[self.output]

    def _weight(self, node: onnx.NodeProto, by_name: dict[str, torch.Tensor]) -> torch.Tensor:
        name = float_name(node.input[0])
        if name not in by_name:
            return self._dequantize(node)
        value = by_name[name]
        if self.consts[node.input[0]].dtype != torch.int8:
            return value  # the int32 bias: float
        scale = (value.detach().abs().amax(dim=(1, 2, 3)) / WEIGHT_QMAX).clamp_min(1e-12)
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(value, scale, zero, 0, -WEIGHT_QMAX, WEIGHT_QMAX)


def float_name(initializer: str) -> str:
    """The float initializer a quantised one stands for (onnxruntime appends ``_quantized``)."""
    return initializer.removesuffix(QUANTIZED)


Inputs = list[torch.Tensor | None]


def _t(x: torch.Tensor | None) -> torch.Tensor:
    assert x is not None  # an optional input that this op needs (the graph is checked by onnx)
    return x


def _conv(x: Inputs, a: dict) -> torch.Tensor:
    pads = a.get("pads", [0, 0, 0, 0])
    inp = _t(x[0])
    if pads[:2] == pads[2:]:
        padding: tuple[int, ...] = tuple(pads[:2])
    else:
        inp, padding = fn.pad(inp, _pads(pads)), (0, 0)
    return fn.conv2d(inp, _t(x[1]), x[2] if len(x) > 2 else None, a.get("strides", [1, 1]), padding,
                    a.get("dilations", [1, 1]), a.get("group", 1))  # fmt: skip


def _quantize(x: Inputs, a: dict) -> torch.Tensor:
    """QuantizeLinear, then (its DequantizeLinear passes the value on) straight back to float."""
    scale, zero = float(_t(x[1])), int(_t(x[2]))
    return torch.fake_quantize_per_tensor_affine(_t(x[0]), scale, zero, 0, 255)


def _maxpool(x: Inputs, a: dict) -> torch.Tensor:
    pads = a.get("pads", [0, 0, 0, 0])
    inp = fn.pad(_t(x[0]), _pads(pads), value=float("-inf")) if any(pads) else _t(x[0])
    return fn.max_pool2d(inp, a["kernel_shape"], a.get("strides", [1, 1]))


def _resize(x: Inputs, a: dict) -> torch.Tensor:
    if a.get("mode", b"nearest") != b"nearest":
        raise UnsupportedGraphError(f"Resize mode {a.get('mode')!r} is not supported for fine-tuning")
    scales = _t(x[2]) if len(x) > 2 and x[2] is not None and x[2].numel() else None
    if scales is not None:
        return fn.interpolate(_t(x[0]), scale_factor=[float(s) for s in scales[2:]], mode="nearest")
    return fn.interpolate(_t(x[0]), size=[int(s) for s in _t(x[3])[2:]], mode="nearest")


def _reshape(x: Inputs, a: dict) -> torch.Tensor:
    shape = [int(s) for s in _t(x[1])]
    # YOLOX's export fixes the batch at 1 in its head's Reshape; training runs batches
    shape[0] = _t(x[0]).shape[0] if shape[0] == 1 else shape[0]
    return _t(x[0]).reshape(shape)


def _space_to_depth(x: Inputs, a: dict) -> torch.Tensor:
    """ONNX's order: the block offset first, then the channel (torch's pixel_unshuffle is the other
    way round)."""
    inp, b = _t(x[0]), int(a["blocksize"])
    n, c, h, w = inp.shape
    blocks = inp.reshape(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
    return blocks.reshape(n, c * b * b, h // b, w // b)


OPS: dict[str, Callable[[Inputs, dict], torch.Tensor]] = {
    "Conv": _conv,
    "Sigmoid": lambda x, a: torch.sigmoid(_t(x[0])),
    "Mul": lambda x, a: _t(x[0]) * _t(x[1]),
    "Add": lambda x, a: _t(x[0]) + _t(x[1]),
    "Concat": lambda x, a: torch.cat([_t(i) for i in x], dim=int(a["axis"])),
    "MaxPool": _maxpool,
    "Resize": _resize,
    "Reshape": _reshape,
    "Transpose": lambda x, a: _t(x[0]).permute(*a["perm"]),
    "SpaceToDepth": _space_to_depth,
    "Gather": lambda x, a: torch.index_select(_t(x[0]), int(a.get("axis", 0)), _t(x[1]).long().reshape(-1)),
    "QuantizeLinear": _quantize,
    "DequantizeLinear": lambda x, a: _t(x[0]),  # after _quantize: the value is float already
}
