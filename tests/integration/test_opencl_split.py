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


def test_overlapped_parts_match_the_plain_path(cache_dir: Path) -> None:
    """An odd batch (5 parts of 1, so both slots are reused): the same numbers with the transfers on
    a second queue as without; uploads and downloads ran on the transfer queue, each step after the
    one it waits for (profiling timestamps), and the two slots alternate."""
    import pyopencl as cl

    from yaguar.engine.backends.base import BackendError
    from yaguar.engine.backends.opencl import OpenCLBackend
    from yaguar.engine.backends.opencl.split import SplitPlan

    m = _conv_silu()
    x = rand(5, 5, 9, 11, seed=6)
    overlapped = OpenCLBackend(m, {"cache_dir": cache_dir, "batch_part": 1, "overlap": True})
    plain = OpenCLBackend(m, {"cache_dir": cache_dir, "batch_part": 1, "overlap": False})
    default = OpenCLBackend(m, {"cache_dir": cache_dir, "batch_part": 1})
    plan, plain_plan, default_plan = (be.plan_for({"x": x}) for be in (overlapped, plain, default))
    assert isinstance(plan, SplitPlan) and plan.streamer is not None
    assert isinstance(plain_plan, SplitPlan) and plain_plan.streamer is None
    # by default only on a GPU: on a CPU device the copies are memcpys on the cores that compute
    is_gpu = bool(default.runtime.device.type & cl.device_type.GPU)
    assert isinstance(default_plan, SplitPlan) and (default_plan.streamer is not None) == is_gpu
    for _ in range(2):  # a second run reuses the slots and their events
        got, want = overlapped.run({"x": x})[0], plain.run({"x": x})[0]
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, ort_run(m, {"x": x})[0], rtol=1e-5, atol=1e-4)
    with pytest.raises(BackendError, match="missing input 'x'"):
        plan.run({"y": x})
    np.testing.assert_array_equal(overlapped.run({"x": x})[0], want)  # and the next run is whole

    streamer = plan.streamer
    trace = sorted(streamer.trace, key=lambda t: t.part)
    assert [t.slot for t in trace] == [0, 1, 0, 1, 0]
    assert streamer.transfer is not streamer.compute
    queue = cl.event_info.COMMAND_QUEUE
    for t in trace:
        assert t.upload.get_info(queue) == streamer.transfer
        assert t.download.get_info(queue) == streamer.transfer
        assert t.compute_in.get_info(queue) == streamer.compute
        assert t.waits["compute"] == [t.upload]
        assert t.waits["download"] == [t.compute_out]
        assert t.compute_in.profile.start >= t.upload.profile.end
        assert t.download.profile.start >= t.compute_out.profile.end
    for before, after in zip(trace, trace[2:], strict=False):  # a slot is reused two parts later
        assert after.waits["upload"] == [before.compute_in]
        assert after.waits["outputs"] == [before.download]
        assert after.upload.profile.start >= before.compute_in.profile.end
        assert after.compute_out.profile.start >= before.download.profile.end
