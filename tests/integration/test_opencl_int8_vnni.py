"""The int8 1x1 convs on AVX-512 VNNI (kernels/conv2d_q8.cl, DOT: vpdpbusd through clang's builtin,
int32 sums) against onnxruntime's int8 results and the other int8 kernel: input channels that are
not a multiple of 4, rows that end inside a tile, uint8 weights with a zero point (the per-pixel
input sums) and int8 weights per channel, an 8-bit residual (read into a float output, and into 8
bits with output zero points off 0), a batch (its tile search:
test_opencl_int8.py); a depthwise 3x3 conv and its projection in one launch (stride 1 and 2, the
same stored values as the separate kernels), and the depthwise conv alone where the pattern does not
hold; and the option: unset it follows the CPU's flags, set it is refused where they are missing.
The kernel tests run where the CPU has VNNI (a PoCL CPU device), the option's tests everywhere."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.integration.opencl_helpers import rand, require_opencl
from tests.integration.test_opencl_int8 import (
    QDQ,
    X_SCALE,
    X_ZERO,
    off_centre_pair,
    residual_block,
    run_both,
    two_convs,
)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_opencl()
    return tmp_path_factory.mktemp("opencl-int8-vnni")


@pytest.fixture(scope="module")
def vnni(cache_dir: Path) -> None:
    from yaguar.engine.backends.opencl.runtime import open_runtime

    if not open_runtime(None, cache_dir).vnni:
        pytest.skip("the OpenCL device is not PoCL on a CPU with avx512_vnni")


CASES = {  # input shape, output channels, uint8 weights (rows of 63 and 108 pixels: whole and partial tiles)
    "odd-channels-int8-weights": ((2, 13, 7, 9), 11, False),
    "uint8-weights-zero-point": ((1, 30, 9, 12), 40, True),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_vnni_pointwise_matches_onnxruntime_and_the_int32_kernel(
    case: str, cache_dir: Path, vnni: None
) -> None:
    shape, cout, uint8_weights = CASES[case]
    m, step = two_convs(shape, cout, 1, 1, 1, [0] * 4, uint8_weights)
    x = rand(*shape, seed=12)
    _, got, ref, kernels = run_both(m, x, cache_dir, int8_vnni=True)
    assert kernels[1:3] == ["conv2d_q8[k1s1,vnni]"] * 2, kernels
    assert np.abs(got - ref).max() <= step * 1.001
    assert (np.abs(got - ref) > step / 2).mean() < 0.02
    # the same integer sums and epilogue as the char4 kernel: the same stored values
    _, plain, _, kernels = run_both(m, x, cache_dir, int8_vnni=False, int8_float_sums=False)
    assert kernels[1:3] == ["conv2d_q8[k1s1,char4]"] * 2, kernels
    np.testing.assert_array_equal(got, plain)


def test_vnni_residual_block_reads_its_shortcut_in_8_bits(cache_dir: Path, vnni: None) -> None:
    """MobileNetV2's block (expand 1x1 -> depthwise -> project 1x1 + the block's input), 13 x 11
    pixels (the last 16-pixel tile of each row partial), two images. The projection's sum is read
    in float (the graph's output), so the depthwise conv keeps its own launch: only a projection
    stored in 8 bits is fused with it (ops/dwpw_q8.py)."""
    m, x_in = residual_block(2)
    be, got, ref, kernels = run_both(m, x_in, cache_dir, int8_vnni=True)
    assert kernels[1:4] == ["conv2d_q8[k1s1,vnni]", "conv2d_dw_q8[k3s1,f32acc]", "conv2d_q8[k1s1,vnni]"], (
        kernels
    )
    assert "ConvQ8DwPw" not in {n.op for n in be.plan_for({"x": x_in}).graph.nodes}
    assert np.abs(got - ref).max() <= 0.25 * 1.001


@pytest.mark.parametrize("residual", [False, True], ids=["requantised", "plus-8-bit-residual"])
def test_vnni_stores_8_bits_off_zero_and_adds_an_8_bit_residual(
    cache_dir: Path, vnni: None, residual: bool
) -> None:
    """A 1x1 conv stored in 8 bits with output zero point 97, alone or + the 8-bit input and
    requantised (zero point 110; residual_block's add ends in float, this one is read by the next
    int8 conv): the 16-lane epilogue on 3 whole 16-pixel tiles of 63, the 8-lane one on the last."""
    m, step = off_centre_pair((1, 13, 7, 9), residual)
    x = rand(1, 13, 7, 9, seed=13)
    be, got, ref, kernels = run_both(m, x, cache_dir, int8_vnni=True)
    assert kernels[1:3] == ["conv2d_q8[k1s1,vnni]"] * 2, kernels
    first = next(n for n in be.plan_for({"x": x}).graph.nodes if n.op == "ConvQ8")
    assert first.fused["out_q8"].zero == (110 if residual else 97)
    assert ("res_q8" in first.fused) is residual
    assert np.abs(got - ref).max() <= step * 1.001
    assert (np.abs(got - ref) > step / 2).mean() < 0.02


def test_vnni_follows_the_cpu_flags_and_is_refused_without_them(
    cache_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset, int8_vnni is on only where the CPU lists avx512f, avx512bw and avx512_vnni (else
    the instruction would fault); true is refused without them; the choice is logged once."""
    from yaguar.engine.backends.base import BackendError
    from yaguar.engine.backends.opencl import OpenCLBackend, backend, runtime

    m, step = two_convs((1, 6, 5, 7), 5, 1, 1, 1, [0] * 4, False)
    x = rand(1, 6, 5, 7, seed=9)
    monkeypatch.setattr(backend, "_vnni_logged", set())
    with caplog.at_level(logging.INFO, logger="yaguar.engine.backends.opencl.backend"):
        real = [OpenCLBackend(m, {"cache_dir": cache_dir, "int8": True}) for _ in range(2)]
    able = real[0].runtime.vnni
    assert real[0].int8_vnni is able
    lines = [r.getMessage() for r in caplog.records if "AVX-512 VNNI" in r.getMessage()]
    assert len(lines) == int(able), lines
    monkeypatch.setattr(runtime, "host_cpu_flags", lambda: frozenset({"avx512f", "avx512bw", "fma"}))
    be, got, ref, kernels = run_both(m, x, cache_dir)
    assert not be.int8_vnni and not any("vnni" in k for k in kernels), kernels
    assert np.abs(got - ref).max() <= step * 1.001
    with pytest.raises(BackendError, match=r"int8_vnni = true, but .* avx512_vnni"):
        OpenCLBackend(m, {"cache_dir": cache_dir, "int8": True, "int8_vnni": True})


def dw_project(
    shape: tuple[int, int, int, int], cout: int, uint8_weights: bool, stride: int, pads: list[int]
) -> onnx.ModelProto:
    """x -> Q/DQ (zero point 128) -> depthwise 3x3 -> Relu6 -> Q/DQ -> 1x1 -> Q/DQ (zero point 97)
    [+ x when the shapes match -> Q/DQ (zero point 110)] -> 1x1 -> Q/DQ: the depthwise conv and
    the projection that alone reads it (MobileNetV2's block, minus its expansion), the projection
    stored in 8 bits for the last conv."""
    b = QDQ(seed=11)
    c = shape[1]
    x = b.qdq("x", X_SCALE, X_ZERO)
    y = b.qdq(b.relu6(b.conv(x, c, c, 3, stride, c, pads, X_SCALE, uint8_weights)), 6 / 255, 0)
    y = b.qdq(b.conv(y, c, cout, 1, 1, 1, [0] * 4, 6 / 255, uint8_weights), 0.05, 97)
    scale = 0.05
    if cout == c and stride == 1:
        y, scale = b.qdq(b.op("Add", [y, x]), 0.06, 110), 0.06
    y = b.qdq(b.conv(y, cout, 5, 1, 1, 1, [0] * 4, scale), 0.04, 131)
    return b.model(shape, y)


FUSED = {  # input shape, projection channels, uint8 weights, stride, pads
    # 27 channels (not a multiple of 4) of 7 x 9 pixels (16-pixel tiles spanning rows, the last
    # one partial), two images, + the block's input
    "residual-uint8-weights": ((2, 27, 7, 9), 27, True, 1, [1] * 4),
    # 13 channels of 5 x 3 (one partial tile) to 11 (two 8-channel blocks, one partial)
    "int8-weights-one-tile": ((1, 13, 5, 3), 11, False, 1, [1] * 4),
    # stride 2, TF's padding (bottom and right only): output rows of 18 (a tile of 16 and one of
    # 2), two images; and padding on every side, output rows of 4 (the same kernel builds)
    "stride2-tf-padding": ((2, 10, 9, 37), 12, True, 2, [0, 0, 1, 1]),
    "stride2-padding-every-side": ((1, 6, 8, 7), 9, True, 2, [1] * 4),
}


@pytest.mark.parametrize("case", list(FUSED), ids=list(FUSED))
def test_depthwise_and_projection_in_one_launch_store_the_separate_kernels_values(
    case: str, cache_dir: Path, vnni: None
) -> None:
    """The fused kernel (ops/dwpw_q8.py) against onnxruntime, and the very same stored values as
    the separate depthwise and 1x1 kernels (int32 sums, VNNI off)."""
    shape, cout, uint8_weights, stride, pads = FUSED[case]
    m = dw_project(shape, cout, uint8_weights, stride, pads)
    x = rand(*shape, seed=14)
    be, got, ref, kernels = run_both(m, x, cache_dir, int8_vnni=True)
    assert kernels[1:3] == [f"conv2d_dwpw_q8[k3s{stride},vnni]", "conv2d_q8[k1s1,vnni]"], kernels
    fused = next(n for n in be.plan_for({"x": x}).graph.nodes if n.op == "ConvQ8DwPw")
    assert ("res_q8" in fused.fused) is (cout == shape[1] and stride == 1)
    assert np.abs(got - ref).max() <= 0.04 * 1.001
    assert (np.abs(got - ref) > 0.02).mean() < 0.02
    _, plain, _, kernels = run_both(m, x, cache_dir, int8_vnni=False, int8_float_sums=False)
    assert kernels[1:3] == [f"conv2d_dw_q8[k3s{stride},char4]", "conv2d_q8[k1s1,char4]"], kernels
    np.testing.assert_array_equal(got, plain)
