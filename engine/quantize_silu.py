"""The SiLUs of a detector in int8 (YOLOX: every conv but the head's last ones is followed by
x * sigmoid(x)), for onnxruntime's static quantisation (``quantize.quantize_file``, ``--silu-int8``).

- **SiLU in int8** (``SILU_INT8_OPS``): Sigmoid and Mul quantised too, so onnxruntime runs
  QLinearSigmoid and QLinearMul between its QLinearConvs instead of a DequantizeLinear, two float ops
  and a QuantizeLinear, which is what makes the convs-only model slower than float at batch 8; and
  with them the ops between the convs (Concat, Add, MaxPool, Resize: 11-13 % faster again on
  onnxruntime at batch 8, and no fewer frames found). ``float_neighbours`` keeps float the nodes
  whose rounding broke it (the head's outputs, and the nodes feeding a conv kept float).
- **The range of a SiLU's input.** A conv's output is quantised on one uint8 grid from its calibrated
  minimum to its maximum, and YOLOX-nano's convs reach far below zero (down to -123 on the shared
  frames), where SiLU is 0 to within a rounding step of its own output. Those values need no room on
  the grid: ``silu_input_ranges`` raises such a minimum to the point beyond which SiLU stays within a
  quarter step of its output's grid of 0 (``silu_floor``), so the grid's steps over the values that
  matter are finer. With it, YOLOX-nano with its SiLUs in int8 found 11.7 of the yardstick's 18
  frames on average over six calibration sets, against 9.5 without (engine/README.md).
- **Fewer float convs** (``MIN_STEPS_SILU``). A conv kept float in an int8 chain costs onnxruntime a
  layout change out of its NHWC int8 chain and back, DequantizeLinears and a float SiLU. Of
  YOLOX-nano's 7 depthwise convs that the default rule (``quantize.MIN_STEPS``) keeps float, only
  the one after the stem has input channels that int8 really breaks (their 10th-percentile RMS is
  0.11 of a uint8 step; the other six 1.5 to 3.0): with those six in int8 the score error against
  float on the calibration frames stayed as it was (mean |error| 0.108 against 0.105) and the
  batch-8 run on onnxruntime took 10 % less time (46.5 against 51.5 ms, 07:09 UTC). Over six
  calibration sets the yardstick found half a frame fewer on average (11.2 against 11.7 of 18).
"""

from __future__ import annotations

import math

import numpy as np
import onnx

CONV_ONLY = ["Conv"]
SILU_INT8_OPS = ["Conv", "Sigmoid", "Mul", "Concat", "Add", "MaxPool", "Resize"]
MIN_STEPS_SILU = 1.0  # with the SiLUs in int8, the conv inputs that stay float: see above
SILU_MIN_AT = 1.2785  # SiLU's minimum, -0.278, is at x = -1.2785; below it |SiLU| only falls


def silu_pairs(model: onnx.ModelProto) -> dict[str, str]:
    """{conv output: SiLU output} for every Conv -> Sigmoid -> Mul(x, sigmoid(x)) of ``model``."""
    producer = {t: n for n in model.graph.node for t in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    pairs = {}
    for n in model.graph.node:
        x = n.input[0] if n.input else ""
        if n.op_type != "Sigmoid" or x not in producer or producer[x].op_type != "Conv":
            continue
        mul = [c for c in consumers.get(n.output[0], []) if c.op_type == "Mul" and x in c.input]
        if mul:
            pairs[x] = mul[0].output[0]
    return pairs


def silu_floor(step: float) -> float:
    """The smallest c (beyond SiLU's minimum) with |SiLU(x)| <= step / 4 for every x <= -c: below -c,
    SiLU rounds to the zero of a grid of ``step``. A quarter, not a half: the input grid's lowest
    point lies up to half of its own step inside -c, and the values clamped there must still round
    to 0, not all of them to -1 step."""

    def over(c: float) -> bool:
        return c / (1 + math.exp(c)) > step / 4

    if not over(SILU_MIN_AT):
        return SILU_MIN_AT
    low, high = SILU_MIN_AT, 64.0  # |SiLU(-64)| ~ 1e-26: under any step
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if over(mid) else (low, mid)
    return high


def silu_input_ranges(
    pairs: dict[str, str], low: dict[str, float], high: dict[str, float]
) -> dict[str, list[dict[str, np.float32]]]:
    """onnxruntime's ``TensorQuantOverrides`` for the SiLU inputs (``pairs``) whose calibrated minimum
    (``low``; ``high`` the maxima, both over the same frames and including 0, as onnxruntime's MinMax
    calibration has them) reaches below ``silu_floor`` of their SiLU output's uint8 step."""
    overrides = {}
    for x, y in pairs.items():
        floor = silu_floor((high[y] - low[y]) / 255)
        if low[x] < -floor:
            # numpy values: onnxruntime reads their dtype
            overrides[x] = [{"rmin": np.float32(-floor), "rmax": np.float32(high[x])}]
    return overrides


def float_neighbours(model: onnx.ModelProto, keep: list[str]) -> list[str]:
    """Non-conv nodes that stay float when Sigmoid and Mul are quantised (``head_tail`` and
    ``feeding_float_convs``): with them in int8, YOLOX-nano's top score on dog.jpg fell from 0.86
    to 0.42."""
    return sorted(set(head_tail(model)) | set(feeding_float_convs(model, keep)))


def head_tail(model: onnx.ModelProto) -> list[str]:
    """Non-conv nodes from which no conv is reached: the head's output Sigmoids, Reshapes, Concats
    and Transposes. Their results are the scores and boxes themselves, which need more than 256
    levels, and no int8 conv reads them, so quantising them only adds rounding."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    reaches: dict[str, bool] = {}
    for n in reversed(model.graph.node):  # ONNX keeps nodes in topological order: consumers first here
        reaches[n.name] = any(
            c.op_type == "Conv" or reaches.get(c.name, False) for t in n.output for c in consumers.get(t, [])
        )
    return [n.name for n in model.graph.node if n.op_type != "Conv" and not reaches[n.name]]


def feeding_float_convs(model: onnx.ModelProto, keep: list[str]) -> list[str]:
    """Non-conv nodes between a float conv (``keep``) and the convs before it, walking up every input
    until a conv or a graph input: a conv kept float because int8 activations are too coarse for it
    would otherwise get those same coarse values from a quantised SiLU in front of it."""
    producer = {t: n for n in model.graph.node for t in n.output}
    by_name = {n.name: n for n in model.graph.node}
    found: set[str] = set()
    todo = [by_name[name].input[0] for name in keep if name in by_name]
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.op_type == "Conv" or node.name in found:
            continue
        found.add(node.name)
        todo += list(node.input)
    return sorted(found)
