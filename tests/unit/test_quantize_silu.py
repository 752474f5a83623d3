"""The SiLU-aware quantisation (engine/quantize_silu.py) on a small graph shaped like YOLOX's blocks,
quantised by onnxruntime as ``yaguar models quantize --silu-int8`` does: Sigmoid and Mul between
Quantize/DequantizeLinear pairs, and the conv output that feeds a SiLU quantised without the negative
tail that SiLU rounds to 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from yaguar.engine.quantize import quantize_file
from yaguar.engine.quantize_silu import CONV_ONLY, SILU_INT8_OPS, SILU_MIN_AT, silu_floor, silu_pairs

SIDE = 16


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.exp(-x))


def _weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "w1": rng.normal(0, 0.6, (8, 3, 1, 1)).astype(np.float32),
        "b1": np.zeros(8, np.float32),
        # conv2's outputs reach far below zero (down to about -40), as YOLOX's do
        "w2": rng.normal(0, 2.0, (8, 8, 1, 1)).astype(np.float32),
        "b2": np.full(8, 1.0, np.float32),
        "w3": rng.normal(0, 0.5, (4, 8, 1, 1)).astype(np.float32),
        "b3": np.zeros(4, np.float32),
    }


def _model(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """x -> Conv1 -> SiLU -> Conv2 -> SiLU -> Conv3 -> Sigmoid -> out (SiLU as Sigmoid and Mul, as
    exported)."""
    nodes = []
    source = "x"
    for i in (1, 2):
        nodes += [
            helper.make_node("Conv", [source, f"w{i}", f"b{i}"], [f"y{i}"], name=f"Conv{i}"),
            helper.make_node("Sigmoid", [f"y{i}"], [f"s{i}"], name=f"Sigmoid{i}"),
            helper.make_node("Mul", [f"y{i}", f"s{i}"], [f"a{i}"], name=f"Mul{i}"),
        ]
        source = f"a{i}"
    nodes += [  # the head: a conv and the Sigmoid that makes its scores
        helper.make_node("Conv", ["a2", "w3", "b3"], ["z3"], name="Conv3"),
        helper.make_node("Sigmoid", ["z3"], ["out"], name="Scores"),
    ]
    graph = helper.make_graph(
        nodes,
        "silu_blocks",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, SIDE, SIDE])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _conv1x1(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("oi,nihw->nohw", w[:, :, 0, 0], x) + b[None, :, None, None]


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.normal(0, 2.0, (1, 3, SIDE, SIDE)).astype(np.float32) for _ in range(6)]


def _quantised(tmp_path: Path, op_types: list[str]) -> tuple[onnx.ModelProto, list[str]]:
    dst = tmp_path / "int8.onnx"
    kept = quantize_file(_model(_weights()), dst, _frames(), "x", op_types)
    return onnx.load(str(dst)), kept


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_silu_floor_is_where_silu_stays_within_a_quarter_step_of_zero() -> None:
    for step in (0.4, 0.05, 0.004, 1e-5):
        c = silu_floor(step)
        beyond = np.linspace(c, c + 40, 4001)
        assert np.abs(_silu(-beyond)).max() <= step / 4 * (1 + 1e-9)
        assert abs(_silu(-c * 0.99)) > step / 4  # and no nearer to zero
    # a step over four times SiLU's deepest value: the whole negative side rounds to 0
    assert silu_floor(1.2) == SILU_MIN_AT
    assert silu_floor(0.05) < silu_floor(0.004) < silu_floor(1e-5)


def test_silu_pairs_finds_each_conv_feeding_a_silu() -> None:
    assert silu_pairs(_model(_weights())) == {"y1": "a1", "y2": "a2"}


def test_a_silu_input_is_quantised_without_the_tail_silu_rounds_to_zero(tmp_path: Path) -> None:
    w = _weights()
    frames = _frames()
    y2 = [_conv1x1(_silu(_conv1x1(x, w["w1"], w["b1"])), w["w2"], w["b2"]) for x in frames]
    low = min(0.0, *(float(y.min()) for y in y2))
    silu_high = max(float(_silu(y).max()) for y in y2)
    floor = silu_floor((silu_high - _silu(np.float64(-SILU_MIN_AT))) / 255)
    assert low < -3 * floor  # the calibrated range reaches far below where SiLU rounds to 0

    def grid_start(model: onnx.ModelProto) -> tuple[float, float]:
        stored = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        (q,) = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "y2"]
        scale, zero = float(stored[q.input[1]]), int(stored[q.input[2]])
        return -zero * scale, scale

    model, kept = _quantised(tmp_path, SILU_INT8_OPS)
    assert kept == ["Conv1"]  # the stem reads raw values and stays float
    start, scale = grid_start(model)
    assert abs(start - -floor) <= scale  # the grid starts at -floor, not at the minimum
    assert abs(scale - (max(float(y.max()) for y in y2) + floor) / 255) < 0.01 * scale
    # Conv2 and Conv3 are int8 (their weights read through DequantizeLinear)
    dequantised = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    convs = {n.name: n for n in model.graph.node if n.op_type == "Conv"}
    assert convs["Conv2"].input[1] in dequantised and convs["Conv3"].input[1] in dequantised
    # convs only in int8 (the default): the calibrated range, as onnxruntime has it
    start, scale = grid_start(_quantised(tmp_path, CONV_ONLY)[0])
    assert abs(start - low) <= scale


def test_silu_int8_quantises_sigmoid_and_mul_and_stays_close_to_float(tmp_path: Path) -> None:
    model, _ = _quantised(tmp_path, SILU_INT8_OPS)
    by_input = {i: n for n in model.graph.node for i in n.input}
    producer = {o: n for n in model.graph.node for o in n.output}
    sigmoid2 = next(n for n in model.graph.node if n.name == "Sigmoid2")
    mul2 = next(n for n in model.graph.node if n.name == "Mul2")
    assert producer[sigmoid2.input[0]].op_type == "DequantizeLinear"
    assert by_input[sigmoid2.output[0]].op_type == "QuantizeLinear"
    assert by_input[mul2.output[0]].op_type == "QuantizeLinear"
    # the head's scores stay float: more than 256 levels, and no int8 conv reads them
    assert producer["out"].name == "Scores" and producer["z3"].name == "Conv3"
    x = _frames()[0]
    want = _run(_model(_weights()), x)
    got = _run(model, x)
    assert np.abs(got - want).mean() < 0.02 and np.abs(got - want).max() < 0.15  # scores in 0..1
