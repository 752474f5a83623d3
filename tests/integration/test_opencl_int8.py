"""The int8 kernels (kernels/conv2d_q8.cl: 8-bit tensors, 8-bit weights, int32 sums, requantised in
the epilogue) against onnxruntime's int8 kernels on the same QDQ graphs: each conv shape on odd
sizes (odd channels and spatial sizes, stride 2, TF's asymmetric padding), int8 weights per output
channel (our quantiser) and uint8 weights with a zero point (Coral's MobileNets), a residual block
read in 8 bits, an op with no int8 kernel between two int8 convs, a device without integer dot
product, and MobileNetV2 end to end. Parity: within one quantisation step of onnxruntime (its
requantisation rounds the same real value through other float operations: a value on a rounding
tie may land one step apart)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.integration.opencl_helpers import ort_run, rand, require_opencl

X_SCALE, X_ZERO = 4.0 / 255, 128


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_opencl()
    return tmp_path_factory.mktemp("opencl-int8")


class QDQ:
    """Builds a QDQ graph the way onnxruntime's quantiser and tf2onnx write them."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.consts: dict[str, np.ndarray] = {}
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def qdq(self, x: str, scale: float, zero: int, dtype: type = np.uint8) -> str:
        s, z, q, y = self.name("s"), self.name("z"), self.name("q"), self.name("dq")
        self.consts[s], self.consts[z] = np.float32(scale), np.asarray(zero, dtype)
        self.nodes += [helper.make_node("QuantizeLinear", [x, s, z], [q]),
                       helper.make_node("DequantizeLinear", [q, s, z], [y])]  # fmt: skip
        return y

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int, group: int, pads: list[int],
             x_scale: float, uint8_weights: bool = False) -> str:  # fmt: skip
        weight = (self.rng.standard_normal((cout, cin // group, k, k)) * 0.3).astype(np.float32)
        wq, ws, wz, y = self.name("wq"), self.name("ws"), self.name("wz"), self.name("conv")
        if uint8_weights:  # one scale and a zero point for the tensor (TFLite's uint8 weights)
            lo, hi = min(float(weight.min()), 0.0), max(float(weight.max()), 0.0)
            scale = np.float32((hi - lo) / 255)
            zero = np.uint8(round(-lo / scale))
            self.consts[wq] = np.clip(np.rint(weight / scale) + zero, 0, 255).astype(np.uint8)
            self.consts[ws], self.consts[wz] = scale, zero
            w_scale = np.full(cout, scale, np.float32)
            self.nodes.append(helper.make_node("DequantizeLinear", [wq, ws, wz], [wq + "d"]))
        else:  # int8 per output channel (onnxruntime's quantiser)
            w_scale = (np.abs(weight).reshape(cout, -1).max(1) / 127).astype(np.float32)
            self.consts[wq] = np.clip(np.rint(weight / w_scale[:, None, None, None]), -127, 127).astype(
                np.int8
            )
            self.consts[ws], self.consts[wz] = w_scale, np.zeros(cout, np.int8)
            self.nodes.append(helper.make_node("DequantizeLinear", [wq, ws, wz], [wq + "d"], axis=0))
        bq, bs, bz = self.name("bq"), self.name("bs"), self.name("bz")
        self.consts[bq] = np.rint(self.rng.standard_normal(cout) / (x_scale * w_scale)).astype(np.int32)
        self.consts[bs], self.consts[bz] = (x_scale * w_scale).astype(np.float32), np.zeros(cout, np.int32)
        self.nodes.append(helper.make_node("DequantizeLinear", [bq, bs, bz], [bq + "d"], axis=0))
        self.nodes.append(helper.make_node("Conv", [x, wq + "d", bq + "d"], [y], kernel_shape=[k, k],
                                           strides=[stride] * 2, pads=pads, group=group))  # fmt: skip
        return y

    def op(self, op_type: str, inputs: list[str], **attrs: object) -> str:
        y = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [y], **attrs))
        return y

    def relu6(self, x: str) -> str:
        lo, hi = self.name("lo"), self.name("hi")
        self.consts[lo], self.consts[hi] = np.float32(0), np.float32(6)
        return self.op("Clip", [x, lo, hi])

    def model(self, shape: tuple[int, ...], out: str) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "int8",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
            [numpy_helper.from_array(np.asarray(v), k) for k, v in self.consts.items()],
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        return m


def two_convs(shape: tuple[int, int, int, int], cout: int, k: int, stride: int, group: int,
              pads: list[int], uint8_weights: bool) -> tuple[onnx.ModelProto, float]:  # fmt: skip
    """x -> Q/DQ -> conv -> Q/DQ -> Relu6 -> Q/DQ -> conv 1x1 -> Q/DQ: the first conv is the case
    under test, writing 8 bits that the second int8 conv reads; returns the output's step."""
    b = QDQ()
    c = shape[1]
    x = b.qdq("x", X_SCALE, X_ZERO)
    mid_scale = 6 / 255
    y = b.conv(x, c, cout, k, stride, group, pads, X_SCALE, uint8_weights)
    y = b.qdq(b.relu6(b.qdq(y, 0.05, 120)), mid_scale, 0)
    y = b.qdq(b.conv(y, cout, 5, 1, 1, 1, [0] * 4, mid_scale, uint8_weights), 0.04, 131)
    return b.model(shape, y), 0.04


CASES = {
    "pointwise-odd-channels": ((2, 13, 7, 9), 11, 1, 1, 1, [0, 0, 0, 0], False),
    "dense3x3-stem-stride2": ((1, 3, 17, 15), 9, 3, 2, 1, [0, 0, 1, 1], False),
    "dense3x3-uint8-weights": ((1, 5, 9, 11), 7, 3, 1, 1, [1, 1, 1, 1], True),
    "dense3x3-21-channels": (
        (1, 3, 19, 13),
        21,
        3,
        2,
        1,
        [0, 0, 1, 1],
        True,
    ),  # 16-channel tiles, one partial
    "depthwise3x3": ((1, 19, 21, 13), 19, 3, 1, 19, [1, 1, 1, 1], True),
    "depthwise3x3-stride2": ((2, 7, 19, 23), 7, 3, 2, 7, [0, 0, 1, 1], False),
    "grouped3x3": ((1, 8, 9, 9), 6, 3, 1, 2, [1, 1, 1, 1], False),
}


def run_both(m: onnx.ModelProto, x: np.ndarray, cache_dir: Path, **options: object) -> tuple:
    from yaguar.engine.backends.opencl import OpenCLBackend

    be = OpenCLBackend(m, {"cache_dir": cache_dir, "int8": True, **options})
    got, ref = be.run({"x": x})[0], ort_run(m, {"x": x})[0]
    return be, got, ref, [la.kernel_name for la in be.plan_for({"x": x}).launches]


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_int8_conv_within_one_step_of_onnxruntime(case: str, cache_dir: Path) -> None:
    shape, cout, k, stride, group, pads, uint8_weights = CASES[case]
    m, step = two_convs(shape, cout, k, stride, group, pads, uint8_weights)
    x = rand(*shape, seed=5)
    _, got, ref, kernels = run_both(m, x, cache_dir)
    assert np.abs(got - ref).max() <= step * 1.001
    assert (np.abs(got - ref) > step / 2).mean() < 0.02  # almost all exactly equal
    # input quantised to 8 bits once; both convs on the int8 kernel, the 8 bits between them
    # never leave 8-bit storage (no fake-quant or dequantise pass between them)
    assert kernels[0] == "quantize8", kernels
    assert all("_q8[" in k for k in kernels[1:3]), kernels
    assert not any(k.startswith(("fake_quant", "dequant8", "quantize8")) for k in kernels[1:]), kernels


def residual_block(batch: int) -> tuple[onnx.ModelProto, np.ndarray]:
    """MobileNetV2's block on 9 channels of 13 x 11 pixels (input scale 0.07): expand 1x1 ->
    depthwise 3x3 -> project 1x1, + the block's input, Q/DQ (uint8 weights); and an input."""
    b = QDQ(seed=3)
    s_in = 0.07
    x = b.qdq("x", s_in, 129)
    y = b.qdq(b.relu6(b.conv(x, 9, 27, 1, 1, 1, [0] * 4, s_in, True)), 6 / 255, 0)
    y = b.qdq(b.relu6(b.conv(y, 27, 27, 3, 1, 27, [1] * 4, 6 / 255, True)), 6 / 255, 0)
    y = b.qdq(b.conv(y, 27, 9, 1, 1, 1, [0] * 4, 6 / 255, True), 0.2, 127)
    out = b.qdq(b.op("Add", [y, x]), 0.25, 130)
    return b.model((batch, 9, 13, 11), out), rand(batch, 9, 13, 11, seed=2)


@pytest.mark.parametrize("float_sums", [False, True], ids=["int32-sums", "fp32-sums"])
def test_residual_block_reads_its_shortcut_in_8_bits(cache_dir: Path, float_sums: bool) -> None:
    """MobileNetV2's block: expand 1x1 -> depthwise -> project 1x1, + the block's input, Q/DQ;
    with int32 sums (the GPU default) and exact fp32 sums (CPU devices: the 1x1 GEMM kernel);
    VNNI off (test_opencl_int8_vnni.py has it on)."""
    m, x_in = residual_block(1)
    be, got, ref, kernels = run_both(m, x_in, cache_dir, int8_float_sums=float_sums, int8_vnni=False)
    assert np.abs(got - ref).max() <= 0.25 * 1.001
    v = "f32acc" if float_sums else "char4"
    assert kernels[:4] == ["quantize8", f"conv2d_q8[k1s1,{v}]", f"conv2d_dw_q8[k3s1,{v}]",
                           f"conv2d_q8[k1s1,{v}]"], kernels  # fmt: skip
    entries = [la.kernel.function_name for la in be.plan_for({"x": x_in}).launches[1:4]]
    assert entries == (["conv2d_1x1_q8", "conv2d_dw_q8", "conv2d_1x1_q8"] if float_sums else
                       ["conv2d_q8", "conv2d_dw_q8", "conv2d_q8"])  # fmt: skip
    project = [n for n in be.plan_for({"x": x_in}).graph.nodes if n.op == "ConvQ8"][-1]
    assert project.fused["residual"].endswith("#q8") and project.fused["res_q8"].scale == np.float32(0.07)


def off_centre_pair(shape: tuple[int, int, int, int], residual: bool) -> tuple[onnx.ModelProto, float]:
    """x -> Q/DQ -> conv 1x1 -> Q/DQ (zero point 97: no Relu, a range not centred on 0) [+ x, Q/DQ
    (zero point 110)] -> conv 1x1 -> Q/DQ: the first conv stores 8 bits in an output zero point
    that is not 0 (two_convs and residual_block store theirs in 0, where its sign makes no
    difference), alone or after the 8-bit residual add; returns the output's step."""
    b = QDQ(seed=7)
    c = shape[1]
    x = b.qdq("x", X_SCALE, X_ZERO)
    y = b.qdq(b.conv(x, c, c, 1, 1, 1, [0] * 4, X_SCALE), 0.05, 97)
    scale = 0.05
    if residual:
        y, scale = b.qdq(b.op("Add", [y, x]), 0.06, 110), 0.06
    y = b.qdq(b.conv(y, c, 5, 1, 1, 1, [0] * 4, scale), 0.04, 131)
    return b.model(shape, y), 0.04


@pytest.mark.parametrize("float_sums", [False, True], ids=["int32-sums", "fp32-sums"])
def test_an_output_zero_point_off_zero_matches_onnxruntime(cache_dir: Path, float_sums: bool) -> None:
    """The integer epilogue adds the output's zero point (97 here) to the requantised sum."""
    m, step = off_centre_pair((1, 13, 7, 9), residual=False)
    x = rand(1, 13, 7, 9, seed=13)
    _, got, ref, kernels = run_both(m, x, cache_dir, int8_float_sums=float_sums, int8_vnni=False)
    assert kernels[1:3] == [f"conv2d_q8[k1s1,{'f32acc' if float_sums else 'char4'}]"] * 2, kernels
    assert np.abs(got - ref).max() <= step * 1.001
    assert (np.abs(got - ref) > step / 2).mean() < 0.02


def test_an_op_without_int8_kernel_falls_back_and_is_logged_once(
    cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """int8 conv -> MaxPool (no int8 kernel) -> Q/DQ -> int8 conv: the pool reads the conv's
    output in float; one log line names it, once per model (not again for another batch)."""
    b = QDQ(seed=4)
    x = b.qdq("x", X_SCALE, X_ZERO)
    y = b.qdq(b.op("Relu", [b.qdq(b.conv(x, 5, 7, 3, 1, 1, [1] * 4, X_SCALE), 0.05, 128)]), 0.05, 0)
    y2 = b.conv(y, 7, 6, 1, 1, 1, [0] * 4, 0.05)  # y is also read by an int8 conv: kept in 8 bits
    pooled = b.qdq(b.op("MaxPool", [y], kernel_shape=[3, 3], pads=[1, 1, 1, 1]), 0.05, 0)
    out = b.qdq(b.op("Add", [b.conv(pooled, 7, 6, 1, 1, 1, [0] * 4, 0.05), y2]), 0.1, 128)
    m = b.model((2, 5, 11, 9), out)
    x_in = rand(2, 5, 11, 9, seed=6)
    with caplog.at_level(logging.INFO, logger="yaguar.engine.backends.opencl.backend"):
        be, got, ref, kernels = run_both(m, x_in, cache_dir)
        be.run({"x": x_in[:1]})  # a second plan, for batch 1
    assert np.abs(got - ref).max() <= 0.1 * 1.001
    lines = [r.getMessage() for r in caplog.records if "no int8 kernel" in r.getMessage()]
    assert lines == ["int8 model.onnx: 1 MaxPool node(s) have no int8 kernel: dequantised, run in float, "
                     "quantised again"], lines  # fmt: skip
    assert "dequant8" in kernels and "pool2d.max" in kernels and kernels.count("quantize8") == 2
    from yaguar.engine.backends.opencl import int8

    # with the cases above, every op of the int8 pass runs here (test_opencl_parity leaves them to us)
    assert {n.op for n in be.plan_for({"x": x_in}).graph.nodes} >= set(int8.OPS)


def test_a_device_without_fp16_or_integer_dot_product_runs_the_char4_kernels(cache_dir: Path) -> None:
    from yaguar.engine.backends.base import BackendError
    from yaguar.engine.backends.opencl import OpenCLBackend

    m, step = two_convs((1, 13, 9, 7), 11, 3, 2, 1, [1, 1, 1, 1], True)
    x = rand(1, 13, 9, 7, seed=8)
    be, got, ref, kernels = run_both(
        m, x, cache_dir, integer_dot_product=False, fp16=False, int8_float_sums=False, int8_vnni=False
    )
    assert not be.integer_dot
    assert [k for k in kernels if "_q8[" in k] == ["conv2d_q8[k3s2,char4]", "conv2d_q8[k1s1,char4]"]
    assert np.abs(got - ref).max() <= step * 1.001
    if not be.runtime.has_extension("cl_khr_integer_dot_product"):  # PoCL, NVIDIA: asked for, refused
        with pytest.raises(BackendError, match="does not report cl_khr_integer_dot_product"):
            OpenCLBackend(m, {"cache_dir": cache_dir, "integer_dot_product": True})


def test_fp32_sums_only_where_every_partial_sum_is_exact(cache_dir: Path) -> None:
    """255 * 127 * 518 < 2^24 <= 255 * 127 * 519: the bound of ops/conv_q8.py. A 1x1 conv over 4000
    channels (255 * sum |w| about 25 million) keeps int32 sums on a CPU device too, and matches."""
    from yaguar.engine.backends.opencl.ops.conv_q8 import float_sums_exact

    assert float_sums_exact(np.full((3, 518, 1, 1), 127, np.int8), 0)
    assert not float_sums_exact(np.full((3, 519, 1, 1), 127, np.int8), 0)
    assert not float_sums_exact(np.full((3, 519, 1, 1), -1, np.int8), -128)  # |w - zw| = 127
    m, step = two_convs((1, 4000, 3, 5), 5, 1, 1, 1, [0] * 4, False)
    x = rand(1, 4000, 3, 5, seed=10)
    _, got, ref, kernels = run_both(m, x, cache_dir, int8_float_sums=True, int8_vnni=False)
    assert kernels[1:3] == ["conv2d_q8[k1s1,char4]", "conv2d_q8[k1s1,f32acc]"], kernels
    assert np.abs(got - ref).max() <= step * 1.001


TUNED = {  # kernel: its Plan option, its key in the tile cache, two candidate tiles
    "fp32-sums": (
        {"int8_float_sums": True},
        "q8_1x1:",
        [{"TM": 6, "NV": 1}, {"TM": 4, "NV": 2, "CO_INNER": 1}],
    ),
    "vnni": ({"int8_vnni": True}, "q8dot_1x1:", [{"TM": 8, "NV": 2}, {"TM": 4, "NV": 2}]),
}


@pytest.mark.parametrize("kind", list(TUNED), ids=list(TUNED))
def test_the_tile_search_tunes_the_int8_pointwise_kernel(cache_dir: Path, tmp_path: Path, kind: str) -> None:
    """The int8 1x1 kernels (fp32 sums; VNNI where the CPU has it) go through the cached tile
    search as the float convs do (two candidates here, to stay quick): a choice per layer is
    stored, and a new plan reads it."""
    from yaguar.engine.backends.opencl.autotune import TuneCache, tune_plan
    from yaguar.engine.backends.opencl.executor import Plan
    from yaguar.engine.backends.opencl.runtime import open_runtime

    option, key, tiles = TUNED[kind]
    rt = open_runtime(None, cache_dir)
    if kind == "vnni" and not rt.vnni:
        pytest.skip("the OpenCL device is not PoCL on a CPU with avx512_vnni")
    m, step = two_convs((2, 13, 7, 9), 11, 1, 1, 1, [0] * 4, kind == "vnni")  # two 1x1 int8 convs
    x = rand(2, 13, 7, 9, seed=11)
    ref = ort_run(m, {"x": x})[0]
    plan = Plan(m, rt, None, False, **option)
    q8 = [la.tune for la in plan.launches if la.tune and la.tune.signature.startswith(key)]
    assert len(q8) == 2
    q8[0].candidates, q8[1].candidates = tiles, [q8[1].current]  # (the second: no new build)
    cache = TuneCache(tmp_path, rt)
    assert tune_plan(plan, cache) == 2
    chosen = [cache.choices[tune.signature] for tune in q8]
    assert {k: v for k, v in chosen[0].items() if k != "WG"} in tiles, chosen
    assert np.abs(plan.run({"x": x})[0] - ref).max() <= step * 1.001
    again = Plan(m, rt, None, False, cache.choices, **option)
    assert [la.tune.current for la in again.launches if la.tune] == chosen
    assert np.abs(again.run({"x": x})[0] - ref).max() <= step * 1.001


def test_the_int8_default_follows_the_device_type_and_a_setting_wins(
    cache_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset, ``int8`` is the int8 kernels on a GPU, and on a CPU device fp32 with fake-quant (where
    bench/engine.py measured the int8 kernels slower) unless its 1x1 convs run on VNNI and the graph
    is int8 end to end (no float op between int8 convs); the choice is logged once per device;
    true or false wins."""
    import pyopencl as cl

    from yaguar.engine.backends.opencl import OpenCLBackend, backend

    gpu_type, cpu_type = cl.device_type.GPU, cl.device_type.CPU
    assert backend.int8_default(gpu_type) and not backend.int8_default(cpu_type)
    assert not backend.int8_default(cpu_type, True, False) and backend.int8_default(cpu_type, True, True)
    monkeypatch.setattr(backend, "_int8_choice_logged", set())
    m, step = two_convs((1, 6, 5, 7), 5, 1, 1, 1, [0] * 4, False)
    b = QDQ(seed=4)  # int8 convs with a float op (MaxPool) between them, then a second one
    y = b.qdq("x", X_SCALE, X_ZERO)
    for cin in (6, 5):
        y = b.qdq(b.conv(y, cin, 5, 1, 1, 1, [0] * 4, X_SCALE if cin == 6 else 0.05), 0.05, 128)
        y = b.qdq(b.op("MaxPool", [y], kernel_shape=[3, 3], pads=[1, 1, 1, 1]), 0.05, 128)
        assert backend.int8_end_to_end(b.model((1, 6, 5, 7), b.conv(y, 5, 4, 1, 1, 1, [0] * 4, 0.05))) is (
            cin == 6
        )
    assert backend.int8_end_to_end(m)
    x = rand(1, 6, 5, 7, seed=9)
    ref = ort_run(m, {"x": x})[0]
    with caplog.at_level(logging.INFO, logger="yaguar.engine.backends.opencl.backend"):
        plain = [OpenCLBackend(m, {"cache_dir": cache_dir}) for _ in range(2)]
    gpu = bool(plain[0].runtime.device.type & gpu_type)
    default = gpu or plain[0].int8_vnni  # (this graph is int8 end to end)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("int8 models on")]
    assert len(lines) == 1 and ("int8 kernels" if default else "fp32 with fake-quant") in lines[0], lines
    for be, int8 in [(plain[0], default), *((OpenCLBackend(m, {"cache_dir": cache_dir, "int8": v}), v) for v in (True, False))]:  # fmt: skip
        assert be.int8 is int8
        kernels = [la.kernel_name for la in be.plan_for({"x": x}).launches]
        assert any("_q8[" in k for k in kernels) is int8, kernels
        assert np.abs(be.run({"x": x})[0] - ref).max() <= step * 1.001


def test_mobilenet_v2_int8_end_to_end(models_dir: Path, images: Path, cache_dir: Path) -> None:
    """Coral's MobileNetV2 (uint8 weights with zero points, relu6, residual adds) on a real
    image: every conv on the int8 kernels (the logits conv reads a Reshape of a Q/DQ), whose integer epilogue
    rounds as onnxruntime's QLinearConv and QLinearAdd do: the logits within one step of
    onnxruntime's (equal here), the same top-5."""
    import cv2

    from yaguar.engine.backends.opencl import OpenCLBackend

    model = onnx.load(str(models_dir / "mobilenet_v2_1.0_224_quant.onnx"))
    del model.graph.output[:]  # the logits (dequantised), before the uint8 softmax
    model.graph.output.append(
        helper.make_tensor_value_info("MobilenetV2/Logits/Squeeze1_dequant", TensorProto.FLOAT, None)
    )
    x = cv2.resize(cv2.imread(str(images / "classic" / "dog.jpg"))[:, :, ::-1], (224, 224))[None]
    be = OpenCLBackend(model, {"cache_dir": cache_dir, "int8": True})
    got, ref = be.run({"input": x})[0], ort_run(model, {"input": x})[0]
    step = 0.09889254
    kernels = [la.kernel_name for la in be.plan_for({"input": x}).launches]
    # every conv, the logits conv too; on VNNI each of the 17 depthwise convs shares a launch with its projection
    convs = sum(2 if "_dwpw_" in k else 1 for k in kernels if "_q8[" in k)
    assert convs == 53 and sum("_dwpw_" in k for k in kernels) == (17 if be.int8_vnni else 0), kernels
    assert np.abs(got - ref).max() <= step * 1.001
    assert (np.abs(got - ref) > step / 2).mean() < 0.01
    assert set(np.argsort(-got[0])[:5]) == set(np.argsort(-ref[0])[:5])
