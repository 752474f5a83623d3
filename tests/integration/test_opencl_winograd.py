"""Winograd F(2x2,3x3) (kernels/winograd.cl) against onnxruntime on odd shapes: odd output sizes (the
2x2 tiles have partial right and bottom edges), channel counts that are not multiples of 4 or 8,
batch 2, asymmetric and no padding, with bias, SiLU and a residual fused into its output transform,
with fp16 storage too;
the tile search times it against the direct kernel and can store it as a layer's choice.

Winograd's transforms add and subtract inputs before the products, so its rounding error is larger
than a direct sum's: atol 32 * K * eps * max|x| * max|w| per K-term sum, with the filter's transform
(entries up to 2.25 times a weight) taken into account; the reference values here are O(10).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from tests.integration.opencl_helpers import model, ort_run, plan_with, rand, require_opencl

EPS = float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_opencl()
    return tmp_path_factory.mktemp("opencl-winograd")


def conv_model(n: int, cin: int, cout: int, h: int, w: int, pads: list[int], silu: bool, residual: bool):
    """3x3 stride-1 conv with bias, then SiLU and a residual Add when asked (fused into the conv)."""
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], kernel_shape=[3, 3], pads=pads)]
    out = "c"
    if silu:
        nodes += [helper.make_node("Sigmoid", ["c"], ["sg"]), helper.make_node("Mul", ["c", "sg"], ["s"])]
        out = "s"
    inputs = {"x": [n, cin, h, w]}
    if residual:
        ho, wo = h + pads[0] + pads[2] - 2, w + pads[1] + pads[3] - 2
        inputs["r"] = [n, cout, ho, wo]
        nodes.append(helper.make_node("Add", [out, "r"], ["y"]))
        out = "y"
    consts = {"W": rand(cout, cin, 3, 3, seed=1, scale=0.2), "B": rand(cout, seed=2)}
    return model(nodes, inputs, [out], consts)


CASES = [
    # n, cin, cout, h, w, pads (top, left, bottom, right), silu, residual
    (2, 13, 21, 17, 23, [1, 1, 1, 1], True, False),  # odd sizes, batch 2, channels not multiples of 4
    (1, 6, 9, 9, 35, [0, 0, 0, 0], False, False),  # no padding: 7 x 33 output, a partial GEMM block
    (1, 5, 7, 11, 19, [1, 0, 2, 1], True, True),  # asymmetric padding, residual after SiLU
    (2, 3, 5, 1, 1, [1, 1, 1, 1], False, False),  # one pixel: every tap but the centre is padding
]


@pytest.mark.parametrize(
    "case",
    CASES,
    ids=lambda c: "n{}c{}-{}x{}x{}p{}s{}r{}".format(*c[:5], "".join(map(str, c[5])), *map(int, c[6:])),
)
def test_winograd_matches_onnxruntime(case: tuple, cache_dir: Path) -> None:
    n, cin, cout, h, w, pads, silu, residual = case
    m = conv_model(n, cin, cout, h, w, pads, silu, residual)
    plan = plan_with(m, cache_dir, {"WINO": 1})
    assert [launch.kernel_name for launch in plan.launches] == ["wino_input", "wino_gemm", "wino_output"]
    feeds = {"x": rand(n, cin, h, w, seed=4, scale=3.0)}
    if residual:
        feeds["r"] = rand(*plan.graph.values["r"].shape, seed=3)
    got, ref = plan.run(feeds)[0], ort_run(m, feeds)[0]
    assert got.shape == ref.shape
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=32 * 9 * cin * EPS * scale)
    # and the direct kernel the choice replaces gives the same answers (no rounding-free coincidence)
    direct = plan_with(m, cache_dir, None)
    assert direct.launches[0].kernel_name.startswith("conv2d[")
    np.testing.assert_allclose(got, direct.run(feeds)[0], rtol=1e-5, atol=32 * 9 * cin * EPS * scale)


def test_strided_and_grouped_convs_keep_the_direct_kernel(cache_dir: Path) -> None:
    """A stored Winograd choice on a layer it cannot compute is ignored, and no such layer offers it."""
    from yaguar.engine.backends.opencl.executor import Plan
    from yaguar.engine.backends.opencl.runtime import open_runtime

    nodes = [
        helper.make_node("Conv", ["x", "W1"], ["a"], kernel_shape=[3, 3], pads=[1] * 4, strides=[2, 2]),
        helper.make_node("Conv", ["a", "W2"], ["y"], kernel_shape=[3, 3], pads=[1] * 4, group=2),
    ]
    m = model(nodes, {"x": [1, 4, 9, 9]}, ["y"], {"W1": rand(6, 4, 3, 3), "W2": rand(6, 3, 3, 3, seed=1)})
    rt = open_runtime(None, cache_dir)
    first = Plan(m, rt, None, False)
    assert all(launch.tune.alternative is None for launch in first.launches)
    choices = {launch.tune.signature: {"WINO": 1} for launch in first.launches}
    plan = Plan(m, rt, None, False, choices=choices)
    assert [launch.kernel_name[:7] for launch in plan.launches] == ["conv2d[", "conv2d["]
    x = rand(1, 4, 9, 9)
    np.testing.assert_allclose(plan.run({"x": x})[0], ort_run(m, {"x": x})[0], rtol=1e-5, atol=1e-4)


def test_tile_search_times_winograd_and_can_pick_it(tmp_path: Path) -> None:
    """On a 48-channel layer the tile search times Winograd against the direct kernel's tiles; when
    Winograd is the faster, the choice is stored and the backend lowers the plan again with it."""
    require_opencl()
    from yaguar.engine.backends.opencl import autotune
    from yaguar.engine.backends.opencl.backend import OpenCLBackend
    from yaguar.engine.backends.opencl.ops import conv

    m = conv_model(1, 48, 48, 24, 24, [1, 1, 1, 1], True, False)
    timed: list[float] = []
    real = autotune._time_alternative

    def forced_win(*args):  # Winograd really runs and is timed; only the comparison is forced
        timed.append(real(*args))
        return 0.0

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(autotune, "_time_alternative", forced_win)
        # one direct tile (the default's program) keeps a cold start short: each tile is a build
        mp.setattr(conv, "candidates", lambda kind: [{"TM": 16, "NV": 1}])
        backend = OpenCLBackend(m, {"cache_dir": tmp_path, "autotune": True})
    assert len(timed) == 1 and timed[0] > 0.0  # Winograd's three launches really ran and were timed
    data = json.loads((tmp_path / "autotune.json").read_text())
    ((_, choices),) = data.items()
    assert list(choices.values()) == [{"WINO": 1}]
    plan = backend.plan_for({"x": np.zeros((1, 48, 24, 24), np.float32)})
    assert [launch.kernel_name for launch in plan.launches] == ["wino_input", "wino_gemm", "wino_output"]
    x = rand(1, 48, 24, 24, seed=5)
    got, ref = backend.run({"x": x})[0], ort_run(m, {"x": x})[0]
    np.testing.assert_allclose(
        got, ref, rtol=1e-5, atol=32 * 9 * 48 * EPS * max(1.0, float(np.abs(ref).max()))
    )


def test_default_runs_winograd_on_wide_layers_of_a_cpu_device(cache_dir: Path) -> None:
    """Without a stored choice: Winograd from 64 channels on a CPU device (as bench/winograd.py
    measured), the direct kernel below that, and the direct kernel in a plan about to be tuned."""
    from yaguar.engine.backends.opencl.executor import Plan
    from yaguar.engine.backends.opencl.runtime import open_runtime

    rt = open_runtime(None, cache_dir)
    wide, narrow = (
        conv_model(1, 64, 64, 7, 5, [1] * 4, True, False),
        conv_model(1, 63, 64, 7, 5, [1] * 4, True, False),
    )
    plan = Plan(wide, rt, None, False)
    if plan.lowerer.is_gpu:
        pytest.skip("the default is measured on CPU devices; GPUs use Winograd where autotune chose it")
    assert [launch.kernel_name for launch in plan.launches] == ["wino_input", "wino_gemm", "wino_output"]
    assert Plan(narrow, rt, None, False).launches[0].kernel_name.startswith("conv2d[")
    tuning = Plan(wide, rt, None, False, tuning=True)
    assert tuning.launches[0].kernel_name.startswith("conv2d[") and tuning.launches[0].tune.alternative
    x = rand(1, 64, 7, 5, seed=6)
    ref = ort_run(wide, {"x": x})[0]
    atol = 32 * 9 * 64 * EPS * max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(plan.run({"x": x})[0], ref, rtol=1e-5, atol=atol)


def test_winograd_with_half_storage(cache_dir: Path) -> None:
    """fp16 activations (option fp16): Winograd reads and writes them as the direct kernel does,
    so both are within half precision's rounding of onnxruntime's fp32 result."""
    from yaguar.engine.backends.opencl.executor import Plan
    from yaguar.engine.backends.opencl.runtime import open_runtime

    rt = open_runtime(None, cache_dir)
    m = conv_model(2, 13, 21, 17, 23, [1, 1, 1, 1], True, False)
    sig = Plan(m, rt, None, False, tuning=True).launches[0].tune.signature
    wino = Plan(m, rt, None, True, choices={sig: {"WINO": 1}})
    assert [launch.kernel_name for launch in wino.launches] == ["wino_input", "wino_gemm", "wino_output"]
    feeds = {"x": rand(2, 13, 17, 23, seed=4, scale=3.0)}
    ref = ort_run(m, feeds)[0]
    # inputs and outputs rounded to half: 2^-11 relative each, summed over the 117-term sums' inputs
    np.testing.assert_allclose(wino.run(feeds)[0], ref, rtol=2e-3, atol=2e-3 * float(np.abs(ref).max()))
