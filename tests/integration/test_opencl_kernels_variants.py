"""The CPU-speed kernel variants against onnxruntime / NumPy on odd shapes: depthwise whole-row
work-items (conv2d_dw_full, strides 1 and 2) and the per-pixel kernel they replaced, the 1x1 GEMM
with 4 x 3 accumulators walking every channel block, the run-per-work-item strided copy
(copy_nd_run: step-2 slices, transposes, long and short last axes), the rational sigmoid of the
conv epilogue, kernels built without FMA, and autotune choices keyed by the kernels' source.

Tolerances as in test_opencl_kernels.py: a K-term sum gets atol 4 * K * eps * max|ref|; the
epilogue sigmoid is the approximation onnxruntime's MLAS uses (absolute error below 1e-6 of the
sigmoid), so SiLU = x * sigmoid(x) is held to 2e-6 * max(1, |x|).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from tests.integration.opencl_helpers import model, ort_run, plan_with, rand, require_opencl

EPS = float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_opencl()
    return tmp_path_factory.mktemp("opencl-variants")


def close(got: np.ndarray, ref: np.ndarray, k: int = 1) -> None:
    assert got.shape == ref.shape
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=max(1e-5, 4 * k * EPS * scale))


def dw_silu_model(n: int, c: int, h: int, w: int, k: int, s: int, pads: list[int], residual: bool):
    """Depthwise conv + SiLU (fused into the epilogue), optionally + a residual Add of input r."""
    nodes = [
        helper.make_node(
            "Conv", ["x", "W", "B"], ["c"], kernel_shape=[k, k], strides=[s, s], pads=pads, group=c
        ),
        helper.make_node("Sigmoid", ["c"], ["sg"]),
        helper.make_node("Mul", ["c", "sg"], ["y" if not residual else "a"]),
    ]
    inputs = {"x": [n, c, h, w]}
    if residual:
        ho = (h + pads[0] + pads[2] - k) // s + 1
        wo = (w + pads[1] + pads[3] - k) // s + 1
        inputs["r"] = [n, c, ho, wo]
        nodes.append(helper.make_node("Add", ["a", "r"], ["y"]))
    return model(nodes, inputs, ["y"], {"W": rand(c, 1, k, k, seed=1), "B": rand(c, seed=2)})


DW_CASES = [
    # n, c, h, w, k, stride, pads (top, left, bottom, right), residual
    (2, 13, 97, 97, 3, 1, [1, 1, 1, 1], False),  # wide rows: interior and edge chunks
    (1, 31, 7, 7, 3, 2, [1, 1, 1, 1], True),  # stride 2, one chunk per row, residual
    (1, 3, 1, 1, 3, 1, [1, 1, 1, 1], False),  # a single pixel: every tap but the centre is padding
    (1, 13, 13, 97, 5, 2, [2, 1, 2, 3], False),  # 5x5, asymmetric padding, odd width
    (2, 31, 27, 26, 3, 1, [0, 0, 0, 0], False),  # no padding: ho = h - 2, rows not a multiple of 8
    (1, 5, 13, 13, 3, 1, [1, 1, 1, 1], True),  # a 13-wide row: both chunks are edge chunks
    (1, 3, 9, 19, 5, 1, [2, 2, 2, 2], False),  # 5x5 stride 1: edge chunks on both sides
]


@pytest.mark.parametrize(
    "case",
    DW_CASES,
    ids=lambda c: "n{}c{}x{}x{}k{}s{}p{}r{}".format(*c[:6], "".join(map(str, c[6])), int(c[7])),
)
def test_depthwise_whole_rows(case: tuple, cache_dir: Path) -> None:
    """The CPU default: conv2d_dw_full, 8 output rows per work-item."""
    run_depthwise(case, None, cache_dir)


@pytest.mark.parametrize("case", [DW_CASES[0], DW_CASES[1]], ids=["s1-wide", "s2-residual"])
def test_depthwise_per_pixel(case: tuple, cache_dir: Path) -> None:
    """The per-pixel kernel (GPUs, dilated convs, an autotune candidate)."""
    run_depthwise(case, {"NV": 2, "ROWS": 1}, cache_dir)


def run_depthwise(case: tuple, tile: dict | None, cache_dir: Path) -> None:
    n, c, h, w, k, s, pads, residual = case
    m = dw_silu_model(n, c, h, w, k, s, pads, residual)
    plan = plan_with(m, cache_dir, tile)
    launch = plan.launches[0]
    assert launch.kernel_name.startswith("conv2d_dw") and len(plan.launches) == 1  # all fused
    if tile is not None:
        assert launch.tune.current == tile
    elif not plan.lowerer.is_gpu:
        assert launch.tune.current == {"FULL": 1, "ROWS": 8}
    feeds = {"x": rand(n, c, h, w)}
    if residual:
        feeds["r"] = rand(*plan.graph.values["r"].shape, seed=3)
    close(plan.run(feeds)[0], ort_run(m, feeds)[0], k=k * k * 2)


def test_depthwise_full_rows_of_6_at_stride_2(cache_dir: Path) -> None:
    """ROWS that does not divide the output height, stride 2 in both axes, a residual."""
    m = dw_silu_model(1, 13, 23, 37, 3, 2, [1, 1, 1, 1], True)
    plan = plan_with(m, cache_dir, {"FULL": 1, "ROWS": 6})
    assert plan.launches[0].tune.current == {"FULL": 1, "ROWS": 6} and len(plan.launches) == 1
    feeds = {"x": rand(1, 13, 23, 37), "r": rand(1, 13, 12, 19, seed=3)}
    close(plan.run(feeds)[0], ort_run(m, feeds)[0], k=18)


def test_dilated_depthwise_keeps_the_per_pixel_kernel(cache_dir: Path) -> None:
    node = helper.make_node(
        "Conv", ["x", "W"], ["y"], kernel_shape=[3, 3], pads=[2, 2, 2, 2], dilations=[2, 2], group=13
    )
    m = model([node], {"x": [1, 13, 13, 13]}, ["y"], {"W": rand(13, 1, 3, 3, seed=1)})
    plan = plan_with(m, cache_dir, None)
    assert "FULL" not in plan.launches[0].tune.current
    x = rand(1, 13, 13, 13)
    close(plan.run({"x": x})[0], ort_run(m, {"x": x})[0], k=9)


@pytest.mark.parametrize("tile", [None, {"TM": 4, "NV": 2, "CO_INNER": 1}])
@pytest.mark.parametrize(
    ("n", "c", "hw", "co"), [(2, 13, 97, 31), (1, 31, 7, 13), (1, 3, 1, 5), (3, 64, 5, 9)]
)
def test_conv1x1_channel_loop_inside(
    tile: dict | None, n: int, c: int, hw: int, co: int, cache_dir: Path
) -> None:
    """The CPU default 1x1 (24 pixels x 4 channels per step, all channel blocks in one work-item;
    channel blocks across work-items for a map too small to split) on pixel counts below, at and
    above its 24-pixel tile and channels not a multiple of 4."""
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], kernel_shape=[1, 1]),
        helper.make_node("Sigmoid", ["c"], ["sg"]),
        helper.make_node("Mul", ["c", "sg"], ["y"]),
    ]
    m = model(
        nodes,
        {"x": [n, c, hw, hw]},
        ["y"],
        {"W": rand(co, c, 1, 1, seed=4, scale=0.3), "B": rand(co, seed=5)},
    )
    plan = plan_with(m, cache_dir, tile)
    # A GPU's default is the local-memory 1x1 (seen on NVIDIA's OpenCL); the tile given is the CPU one's.
    default = "conv2d_1x1_lmem" if tile is None and plan.lowerer.is_gpu else "conv2d_1x1"
    assert plan.launches[0].kernel_name == default and len(plan.launches) == 1
    if tile is None and not plan.lowerer.is_gpu:
        # the channel loop stays inside unless the whole layer would be one work-group of 8
        wide = n * -(-(hw * hw) // 24) > 8
        assert plan.launches[0].tune.current.get("CO_INNER", 0) == int(wide)
    x = rand(n, c, hw, hw)
    close(plan.run({"x": x})[0], ort_run(m, {"x": x})[0], k=2 * c)


def test_copy_runs_slices_transposes_concat(cache_dir: Path) -> None:
    """copy_nd_run on last axes of 49 (step-2 slices of 98: runs of 8 plus a tail), 208 (a YOLOX
    Focus slice of 416), exactly 8 and below 8 (the per-element kernel), a reversed axis and
    transposes (last axis 34 read with stride 98)."""
    from yaguar.engine.backends.opencl import OpenCLBackend

    consts = {
        "s0": np.array([0, 0], np.int64),
        "s1": np.array([1, 0], np.int64),
        "s2": np.array([0, 1], np.int64),
        "s3": np.array([1, 1], np.int64),
        "end": np.array([2**62, 2**62], np.int64),
        "ax": np.array([2, 3], np.int64),
        "st2": np.array([2, 2], np.int64),
        "rs": np.array([-1], np.int64),
        "re": np.array([-(2**62)], np.int64),
        "ra": np.array([3], np.int64),
        "rstep": np.array([-1], np.int64),
    }
    nodes = [helper.make_node("Slice", ["x", f"s{i}", "end", "ax", "st2"], [f"q{i}"]) for i in range(4)]
    nodes += [
        helper.make_node("Concat", ["q0", "q1", "q2", "q3"], ["focus"], axis=1),  # YOLOX's order
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),  # last axis 3: per element
        helper.make_node("Transpose", ["x"], ["t2"], perm=[0, 1, 3, 2]),  # last axis 97, src stride 97
        helper.make_node("Slice", ["x", "rs", "re", "ra", "rstep"], ["rev"]),  # stride -1
        helper.make_node("Slice", ["v", f"s{0}", "end", "ax", "st2"], ["v2"]),  # 16 wide -> runs of 8
    ]
    m = model(nodes, {"x": [2, 3, 34, 98], "v": [1, 5, 3, 16]}, ["focus", "t", "t2", "rev", "v2"], consts)
    be = OpenCLBackend(m, {"cache_dir": cache_dir})
    plan = be.plan_for({"x": np.zeros((2, 3, 34, 98), np.float32), "v": np.zeros((1, 5, 3, 16), np.float32)})
    assert any(la.kernel.function_name == "copy_nd_run" for la in plan.launches)
    assert any(la.kernel.function_name == "copy_nd" for la in plan.launches)
    feeds = {"x": rand(2, 3, 34, 98), "v": rand(1, 5, 3, 16, seed=2)}
    for got, ref in zip(be.run(feeds), ort_run(m, feeds), strict=True):
        np.testing.assert_array_equal(got, ref)  # copies are exact

    assert "space_to_depth" in [la.kernel_name for la in plan.launches]  # the Focus concat

    big = model(nodes[:5], {"x": [2, 3, 416, 416]}, ["focus"], consts)
    be = OpenCLBackend(big, {"cache_dir": cache_dir})
    launches = be.plan_for({"x": np.zeros((2, 3, 416, 416), np.float32)}).launches
    assert [la.kernel_name for la in launches] == ["space_to_depth"]  # 4 Slices + Concat: one copy
    xb = {"x": rand(2, 3, 416, 416, seed=3)}
    np.testing.assert_array_equal(be.run(xb)[0], ort_run(big, xb)[0])


def test_concat_of_slices_that_is_not_one_view_stays_slices(cache_dir: Path) -> None:
    """Slices of different lengths (one of them reversed) cannot be one affine copy."""
    from yaguar.engine.backends.opencl import OpenCLBackend

    consts = {
        "a0": np.array([0], np.int64),
        "a1": np.array([5], np.int64),
        "b0": np.array([3], np.int64),
        "b1": np.array([-(2**62)], np.int64),
        "ax": np.array([3], np.int64),
        "m1": np.array([-1], np.int64),
    }
    nodes = [
        helper.make_node("Slice", ["x", "a0", "a1", "ax"], ["p"]),
        helper.make_node("Slice", ["x", "b0", "b1", "ax", "m1"], ["q"]),
        helper.make_node("Concat", ["p", "q"], ["y"], axis=3),
    ]
    m = model(nodes, {"x": [2, 3, 7, 13]}, ["y"], consts)
    be = OpenCLBackend(m, {"cache_dir": cache_dir})
    names = [la.kernel_name for la in be.plan_for({"x": np.zeros((2, 3, 7, 13), np.float32)}).launches]
    assert "space_to_depth" not in names and names.count("slice") == 2
    feeds = {"x": rand(2, 3, 7, 13)}
    np.testing.assert_array_equal(be.run(feeds)[0], ort_run(m, feeds)[0])


def test_epilogue_sigmoid_and_silu_accuracy(cache_dir: Path) -> None:
    """The rational sigmoid of the conv epilogue against the exact one (float64 NumPy) over
    [-100, 100], including the clamp region beyond +-18 and values near 0."""
    from yaguar.engine.backends.opencl import OpenCLBackend

    v = np.concatenate([np.linspace(-100, 100, 4001), np.linspace(-1e-3, 1e-3, 31), [0.0]]).astype(np.float32)
    x = v.reshape(1, 1, 1, -1)
    ident = {"W": np.ones((1, 1, 1, 1), np.float32)}
    conv = helper.make_node("Conv", ["x", "W"], ["c"], kernel_shape=[1, 1])
    for act in ("Sigmoid", "SiLU"):
        nodes = [conv, helper.make_node("Sigmoid", ["c"], ["s" if act == "SiLU" else "y"])]
        if act == "SiLU":
            nodes.append(helper.make_node("Mul", ["c", "s"], ["y"]))
        m = model(nodes, {"x": list(x.shape)}, ["y"], ident)
        be = OpenCLBackend(m, {"cache_dir": cache_dir})
        assert len(be.plan_for({"x": x}).launches) == 1  # fused: the epilogue computes it
        got = be.run({"x": x})[0].reshape(-1).astype(np.float64)
        sig = 1.0 / (1.0 + np.exp(-v.astype(np.float64)))
        if act == "Sigmoid":
            assert np.abs(got - sig).max() < 1e-6
            assert got.min() >= 0.0 and got.max() <= 1.0 + 1e-7
        else:
            exact = v * sig
            assert np.all(np.abs(got - exact) <= 2e-6 * np.maximum(1.0, np.abs(v)))


def test_kernels_without_fma_give_the_same_answers(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A device without hardware FMA builds MAD as mad(): same results within the sum tolerance."""
    from yaguar.engine.backends.opencl import OpenCLBackend
    from yaguar.engine.backends.opencl.runtime import Runtime

    m = dw_silu_model(1, 13, 29, 29, 3, 1, [1, 1, 1, 1], False)
    x = rand(1, 13, 29, 29)
    ref = ort_run(m, {"x": x})[0]
    monkeypatch.setattr(Runtime, "fast_fma", property(lambda self: False))
    be = OpenCLBackend(m, {"cache_dir": cache_dir})
    assert "-DUSE_FMA=1" not in be.runtime.build_options({})
    close(be.run({"x": x})[0], ref, k=18)


def test_autotune_key_names_the_kernel_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Choices timed on one version of the conv kernels are not reused by another."""
    from yaguar.engine.backends.opencl import autotune
    from yaguar.engine.backends.opencl.runtime import open_runtime

    rt = open_runtime(None, tmp_path)
    first = autotune.TuneCache(tmp_path, rt)
    first.choices["1x1:sig"] = {"TM": 8, "NV": 1}
    first.save()
    assert autotune.TuneCache(tmp_path, rt).choices == {"1x1:sig": {"TM": 8, "NV": 1}}
    monkeypatch.setattr(autotune, "kernel_digest", lambda: "edited-kernel")
    assert autotune.TuneCache(tmp_path, rt).choices == {}
