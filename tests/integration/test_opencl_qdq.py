"""QDQ graphs as ``yaguar models quantize`` writes them (onnxruntime's quantiser: int8 per-channel
weights, uint8 activations, activations like Relu left between two Q/DQ pairs) on the OpenCL backend,
against onnxruntime running the same graph with its int8 kernels, with ``int8 = false``: fp32 with
fake-quant (the int8 kernels are tested in test_opencl_int8.py). Parity is within one quantisation
step of the output (onnxruntime requantises in integers, we fake-quantise in fp32: a value on a
rounding boundary may land one step apart)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.integration.opencl_helpers import ort_run, rand, require_opencl


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_opencl()
    return tmp_path_factory.mktemp("opencl-qdq")


def qdq_conv_relu(
    n: int, c: int, h: int, w: int, co: int, k: int, group: int
) -> tuple[onnx.ModelProto, float]:
    """x -> Q/DQ -> Conv (int8 weights per output channel, int32 bias) -> Q/DQ -> Relu -> Q/DQ -> y."""
    rng = np.random.default_rng(7)
    weight = rand(co, c // group, k, k, seed=3) * 0.3
    w_scale = (np.abs(weight).reshape(co, -1).max(1) / 127).astype(np.float32)
    w_q = np.clip(np.rint(weight / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
    x_scale, y_scale = np.float32(4.0 / 255), np.float32(0.05)
    bias = (rng.standard_normal(co) * 0.5).astype(np.float32)
    b_q = np.rint(bias / (x_scale * w_scale)).astype(np.int32)
    consts = {
        "xs": x_scale, "xz": np.uint8(128), "ys": y_scale, "yz": np.uint8(100), "rz": np.uint8(0),
        "wq": w_q, "ws": w_scale, "wz": np.zeros(co, np.int8), "bq": b_q, "bs": x_scale * w_scale,
        "bz": np.zeros(co, np.int32),
    }  # fmt: skip
    node = helper.make_node
    nodes = [
        node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
        node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"], axis=0),
        node("Conv", ["xd", "wd", "bd"], ["c"], kernel_shape=[k, k], pads=[k // 2] * 4, group=group),
        node("QuantizeLinear", ["c", "ys", "yz"], ["cq"]),
        node("DequantizeLinear", ["cq", "ys", "yz"], ["cd"]),
        node("Relu", ["cd"], ["r"]),
        node("QuantizeLinear", ["r", "ys", "rz"], ["rq"]),
        node("DequantizeLinear", ["rq", "ys", "rz"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, c, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), name) for name, v in consts.items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m, float(y_scale)


@pytest.mark.parametrize(
    ("n", "c", "h", "w", "co", "k", "group"),
    [(2, 13, 11, 9, 7, 3, 1), (1, 31, 13, 7, 31, 3, 31), (1, 13, 97, 1, 31, 1, 1)],
    ids=["dense3x3-batch2", "depthwise", "1x1-column"],
)
def test_conv_qdq_relu_qdq_is_one_launch_within_one_step(
    n: int, c: int, h: int, w: int, co: int, k: int, group: int, cache_dir: Path
) -> None:
    from yaguar.engine.backends.opencl import OpenCLBackend

    m, step = qdq_conv_relu(n, c, h, w, co, k, group)
    x = rand(n, c, h, w, seed=5)
    be = OpenCLBackend(m, {"cache_dir": cache_dir, "int8": False})  # the fp32 path (int8: test_opencl_int8)
    got, ref = be.run({"x": x})[0], ort_run(m, {"x": x})[0]
    assert np.abs(got - ref).max() <= step * 1.001
    assert (got != ref).mean() < 0.01  # and almost all exactly equal
    # the input's fake-quant, then ONE conv launch with bias, both Q/DQ pairs and the Relu fused
    # (the output is then copied out of its pooled view)
    kernels = [la.kernel_name for la in be.plan_for({"x": x}).launches]
    assert kernels[0] == "fake_quant8" and "conv" in kernels[1], kernels
    assert not any("relu" in k or "fakequant" in k or "conv" in k for k in kernels[2:]), kernels
