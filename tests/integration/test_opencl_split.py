"""A batch run in parts (engine/backends/opencl/split.py): how big a part is on this device, the
same numbers as the whole batch and as onnxruntime, and a model whose outputs do not split by image
run whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from tests.integration.opencl_helpers import model, ort_run, rand, require_opencl


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_opencl()
    return tmp_path_factory.mktemp("opencl-split")


def _conv_silu() -> onnx.ModelProto:
    """Conv 3x3 -> SiLU -> Conv 1x1 on an odd map, its batch left open."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c"], ["s"]),
        helper.make_node("Mul", ["c", "s"], ["a"]),
        helper.make_node("Conv", ["a", "w2"], ["y"], kernel_shape=[1, 1]),
    ]
    consts = {
        "w1": rand(7, 5, 3, 3, seed=1, scale=0.3),
        "b1": rand(7, seed=2),
        "w2": rand(3, 7, 1, 1, seed=3),
    }
    return model(nodes, {"x": ["N", 5, 9, 11]}, ["y"], consts)


def test_part_size_follows_the_device() -> None:
    require_opencl()
    import pyopencl as cl

    from yaguar.engine.backends.opencl.runtime import select_device
    from yaguar.engine.backends.opencl.split import CACHE_SHARE, part_size

    device = select_device(None)
    budget = int(device.global_mem_cache_size) // CACHE_SHARE
    assert part_size(8, 10**12, device, fixed=3) == 2  # the largest divisor up to the fixed size
    assert part_size(6, 10**12, device, fixed=100) == 6
    if device.type & cl.device_type.GPU:
        assert part_size(8, budget, device) == 8  # a GPU takes the whole batch
        return
    assert part_size(8, budget // 2 + 1, device) == 1  # two images overflow the cache share
    assert part_size(6, budget // 3, device) == 3
    assert part_size(8, budget // 8, device) == 8
    assert part_size(8, 10**12, device) == 1  # at least one image


def test_parts_give_the_whole_batch_result(cache_dir: Path) -> None:
    from yaguar.engine.backends.opencl import OpenCLBackend
    from yaguar.engine.backends.opencl.split import SplitPlan

    m = _conv_silu()
    x = rand(6, 5, 9, 11, seed=4)
    parts = OpenCLBackend(m, {"cache_dir": cache_dir, "batch_part": 2})
    whole = OpenCLBackend(m, {"cache_dir": cache_dir, "batch_part": 6})
    assert isinstance(parts.plan_for({"x": x}), SplitPlan)
    assert not isinstance(whole.plan_for({"x": x}), SplitPlan)
    got, full, ref = parts.run({"x": x})[0], whole.run({"x": x})[0], ort_run(m, {"x": x})[0]
    assert got.shape == ref.shape == (6, 3, 9, 11)
    np.testing.assert_allclose(got, full, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
    assert len(parts.profile({"x": x})) == 3 * len(whole.profile({"x": x}))  # every launch of every part
    with pytest.raises(Exception, match="batch 6"):
        parts.plan_for({"x": x}).run({"x": x[:4]})


def test_outputs_mixing_images_run_whole(cache_dir: Path) -> None:
    """A max over the batch axis: parts would give one row per part, so the batch runs whole."""
    from yaguar.engine.backends.opencl import OpenCLBackend
    from yaguar.engine.backends.opencl.split import SplitPlan

    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("ReduceMax", ["r"], ["y"], axes=[0], keepdims=1),
    ]
    m = model(nodes, {"x": ["N", 3, 5, 7]}, ["y"])
    x = rand(4, 3, 5, 7, seed=5)
    be = OpenCLBackend(m, {"cache_dir": cache_dir, "batch_part": 1})
    assert not isinstance(be.plan_for({"x": x}), SplitPlan)
    got, ref = be.run({"x": x})[0], ort_run(m, {"x": x})[0]
    assert got.shape == ref.shape == (1, 3, 5, 7)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
