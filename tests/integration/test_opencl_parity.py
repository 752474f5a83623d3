"""Every op in the OpenCL lowering table against onnxruntime, on odd shapes.

``CASES`` are small graphs; ``test_every_lowered_op_has_a_parity_case`` compiles each one as far as the
OpenCL backend's fusion pass (no device needed) and checks that the ops left in the graphs, the ones
that really get lowered, cover ``ops.LOWERINGS``: an op added to the table without a case here fails
it. Ops made by fusion (SiLU, FakeQuant, StridedView) get the ONNX pattern that becomes them.

Tolerances as in test_opencl_kernels.py: atol 4 * k * eps * max(1, max|ref|), k the longest sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.integration.opencl_helpers import model, ort_run, rand, require_opencl

EPS = float(np.finfo(np.float32).eps)
I64 = np.int64


@dataclass(frozen=True)
class Case:
    name: str
    nodes: list[onnx.NodeProto]
    inputs: dict[str, list[int]]
    outputs: list[str]
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    opset: int = 13
    positive: tuple[str, ...] = ()  # inputs drawn in [0.5, 3.5): logarithms, roots, powers
    k: int = 4  # longest sum in the case, for the tolerance
    uint8_outputs: tuple[str, ...] = ()

    def model(self) -> onnx.ModelProto:
        m = model(self.nodes, self.inputs, self.outputs, self.consts, opset=self.opset)
        for out in m.graph.output:
            if out.name in self.uint8_outputs:
                out.type.tensor_type.elem_type = TensorProto.UINT8
        return m

    def feeds(self) -> dict[str, np.ndarray]:
        feeds = {}
        for seed, (name, shape) in enumerate(self.inputs.items()):
            x = rand(*shape, seed=seed, scale=2.0)
            feeds[name] = (np.abs(x) + 0.5).astype(np.float32) if name in self.positive else x
        return feeds


def node(op: str, inputs: list[str], outputs: list[str], **attrs: object) -> onnx.NodeProto:
    return helper.make_node(op, inputs, outputs, **attrs)


def _unary_outputs(ops: list[str], x: str) -> tuple[list[onnx.NodeProto], list[str]]:
    nodes = [node(op, [x], [f"{op.lower()}_{x}"]) for op in ops]
    return nodes, [n.output[0] for n in nodes]


UNARY_NODES, UNARY_OUTS = _unary_outputs(
    ["Exp", "Neg", "Abs", "Floor", "Ceil", "Erf", "Sigmoid", "Tanh", "Relu", "HardSigmoid", "HardSwish"], "x"
)
POSITIVE_NODES, POSITIVE_OUTS = _unary_outputs(["Log", "Sqrt", "Reciprocal"], "p")

CASES = [
    Case(
        "unary",
        [
            *UNARY_NODES,
            node("LeakyRelu", ["x"], ["leaky"], alpha=0.2),
            node("Clip", ["x", "lo", "hi"], ["clip"]),
            node("Identity", ["x"], ["same"]),
            *POSITIVE_NODES,
        ],
        {"x": [2, 13, 7], "p": [3, 31]},
        [*UNARY_OUTS, "leaky", "clip", "same", *POSITIVE_OUTS],
        {"lo": np.float32(-0.5), "hi": np.float32(1.25)},
        opset=14,
        positive=("p",),
    ),
    Case(
        "binary",
        [
            node("Add", ["a", "c"], ["add"]),
            node("Sub", ["a", "b"], ["sub"]),
            node("Mul", ["a", "c"], ["mul"]),
            node("Div", ["a", "p"], ["div"]),
            node("Max", ["a", "b"], ["max"]),
            node("Min", ["b", "a"], ["min"]),
            node("Pow", ["p", "e"], ["pow"]),
            node("PRelu", ["a", "slope"], ["prelu"]),
        ],
        {"a": [2, 13, 7], "b": [13, 1], "c": [7], "p": [2, 13, 7]},
        ["add", "sub", "mul", "div", "max", "min", "pow", "prelu"],
        {"e": np.float32(1.5), "slope": rand(13, 1, seed=9)},
        positive=("p",),
    ),
    Case(  # becomes SiLU
        "silu", [node("Sigmoid", ["x"], ["s"]), node("Mul", ["x", "s"], ["y"])], {"x": [1, 13, 31]}, ["y"]
    ),
    Case(  # what onnxruntime's graph optimiser makes of YOLOX's Focus slices (our int8 YOLOX-nano)
        "space_to_depth",
        [
            node("SpaceToDepth", ["x"], ["s"], blocksize=3),
            node("Gather", ["s", "idx"], ["gather"], axis=1),
        ],
        {"x": [2, 5, 9, 6]},
        ["s", "gather"],
        {"idx": np.random.default_rng(1).permutation(45).astype(np.int64)},
    ),
    Case(  # Q -> DQ becomes FakeQuant; a Q read outside the pair stays a Q, its DQ a DQ
        "quantize",
        [
            node("QuantizeLinear", ["x", "s", "z"], ["q"]),
            node("DequantizeLinear", ["q", "s", "z"], ["fq"]),
            node("QuantizeLinear", ["x", "s", "z"], ["q2"]),
            node("DequantizeLinear", ["q2", "s", "z"], ["dq"]),
        ],
        {"x": [2, 13, 7]},
        ["fq", "q2", "dq"],
        {"s": np.float32(0.02), "z": np.uint8(128)},
        uint8_outputs=("q2",),
    ),
    Case(
        "conv_gemm_matmul",
        [
            node("Conv", ["x", "w", "bias"], ["conv"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            node("Gemm", ["v", "gw", "gb"], ["gemm"], transB=1, alpha=0.5, beta=2.0),
            node("MatMul", ["m", "mw"], ["matmul"]),
        ],
        {"x": [1, 5, 9, 11], "v": [3, 13], "m": [2, 7, 13]},
        ["conv", "gemm", "matmul"],
        {
            "w": rand(7, 5, 3, 3, seed=1),
            "bias": rand(7, seed=2),
            "gw": rand(31, 13, seed=3),
            "gb": rand(31, seed=4),
            "mw": rand(13, 5, seed=5),
        },
        k=45,
    ),
    Case(
        "pooling",
        [
            node("MaxPool", ["x"], ["maxpool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
            node("AveragePool", ["x"], ["avgpool"], kernel_shape=[3, 3], strides=[2, 2]),
            node("GlobalAveragePool", ["x"], ["gap"]),
            node("GlobalMaxPool", ["x"], ["gmp"]),
        ],
        {"x": [2, 13, 9, 11]},
        ["maxpool", "avgpool", "gap", "gmp"],
        k=99,
    ),
    Case(
        "resize",
        [node("Resize", ["x", "", "scales"], ["y"], mode="nearest")],
        {"x": [1, 13, 7, 9]},
        ["y"],
        {"scales": np.array([1, 1, 2, 2], np.float32)},
    ),
    Case(  # the opset-9 spelling of a nearest resize (older YOLO exports)
        "upsample",
        [node("Upsample", ["x", "scales"], ["y"], mode="nearest")],
        {"x": [1, 13, 7, 9]},
        ["y"],
        {"scales": np.array([1, 1, 2, 3], np.float32)},
        opset=9,
    ),
    Case(
        "reduce",
        [
            node("ReduceSum", ["x", "axes"], ["sum"], keepdims=1),
            node("ReduceMax", ["x"], ["max"], axes=[1], keepdims=0),
            node("ReduceMin", ["x"], ["min"], axes=[2, 3], keepdims=1),
            node("ReduceMean", ["x"], ["mean"], axes=[-1], keepdims=1),
        ],
        {"x": [2, 13, 7, 9]},
        ["sum", "max", "min", "mean"],
        {"axes": np.array([2, 3], I64)},
        k=63,
    ),
    Case(
        "softmax",
        [node("Softmax", ["x"], ["sm"], axis=-1), node("LogSoftmax", ["x"], ["lsm"], axis=1)],
        {"x": [2, 13, 31]},
        ["sm", "lsm"],
        k=31,
    ),
    Case(
        "layout",
        [
            node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
            node("Slice", ["x", "st", "en", "ax", "sp"], ["s"]),
            node("Split", ["x", "parts"], ["s1", "s2", "s3"], axis=1),
            node("Concat", ["s3", "s1"], ["c"], axis=1),
            node("Gather", ["x", "gi"], ["g"], axis=1),
            node("Pad", ["x", "pads"], ["pad"], mode="constant"),
            node("Reshape", ["t", "shape"], ["r"]),
            node("Expand", ["b", "ex"], ["e"]),
            node("Flatten", ["x"], ["f"], axis=2),
            node("Squeeze", ["b", "sq"], ["squeezed"]),
            node("Unsqueeze", ["squeezed", "sq"], ["u"]),
            node("Cast", ["x"], ["cast"], to=TensorProto.FLOAT),
        ],
        {"x": [2, 13, 7, 9], "b": [1, 13, 1, 9]},
        ["t", "s", "s2", "c", "g", "pad", "r", "e", "f", "u", "cast"],
        {
            "st": np.array([0, 1], I64),
            "en": np.array([2**62, -1], I64),
            "ax": np.array([2, 3], I64),
            "sp": np.array([1, 2], I64),
            "parts": np.array([4, 4, 5], I64),
            "gi": np.array([2, 0, 5], I64),
            "pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], I64),
            "shape": np.array([2, -1], I64),
            "ex": np.array([2, 13, 7, 9], I64),
            "sq": np.array([0], I64),
        },
    ),
    Case(  # YOLOX's Focus: four step-2 slices and their Concat become one StridedView
        "focus",
        [node("Slice", ["x", f"st{i}", "en", "ax", "step"], [f"f{i}"]) for i in range(4)]
        + [node("Concat", [f"f{i}" for i in range(4)], ["y"], axis=1)],
        {"x": [1, 3, 14, 18]},
        ["y"],
        {
            **{f"st{i}": np.array(start, I64) for i, start in enumerate([[0, 0], [1, 0], [0, 1], [1, 1]])},
            "en": np.array([2**62, 2**62], I64),
            "ax": np.array([2, 3], I64),
            "step": np.array([2, 2], I64),
        },
    ),
]


def lowered_ops(case: Case) -> set[str]:
    """The ops left after the backend's own passes: what the plan really lowers to kernels."""
    from yaguar.engine.backends.opencl import frontend, fusion

    graph = frontend.load(case.model())
    fusion.optimise(graph)
    return {n.op for n in graph.nodes}


def test_every_lowered_op_has_a_parity_case() -> None:
    pytest.importorskip("pyopencl", reason="pyopencl is not installed (pip install yaguar[opencl])")
    from yaguar.engine.backends.opencl import int8
    from yaguar.engine.backends.opencl.ops import LOWERINGS, dwpw_q8

    covered = set().union(*(lowered_ops(case) for case in CASES))
    # the int8 ops: test_opencl_int8.py, and the fused depthwise + 1x1: test_opencl_int8_vnni.py
    missing = set(LOWERINGS) - covered - set(int8.OPS) - {dwpw_q8.OP}
    assert not missing, f"ops in the lowering table with no parity case: {sorted(missing)}"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_opencl()
    return tmp_path_factory.mktemp("opencl-parity")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_parity_with_onnxruntime(case: Case, cache_dir: Path) -> None:
    from yaguar.engine.backends.opencl import OpenCLBackend

    m, feeds = case.model(), case.feeds()
    got = OpenCLBackend(m, {"cache_dir": cache_dir}).run(feeds)
    ref = ort_run(m, feeds)
    for name, g, r in zip(case.outputs, got, ref, strict=True):
        assert g.shape == r.shape, name
        if r.dtype == np.uint8:  # quantised values: round-half-to-even on both sides
            np.testing.assert_array_equal(g.astype(np.uint8), r, err_msg=name)
            continue
        scale = max(1.0, float(np.abs(r).max()))
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=max(1e-5, 4 * case.k * EPS * scale), err_msg=name)
