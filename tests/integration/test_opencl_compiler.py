"""The OpenCL compiler as a whole, on PoCL: what autotuning leaves behind in a plan, that the shape
pass reads the graph without changing it, and when PoCL's worker threads are pinned."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from tests.integration.opencl_helpers import model, ort_run, rand, require_opencl


def two_conv_model() -> onnx.ModelProto:
    """A general 3x3 conv (weights laid out per TM) then a dilated depthwise conv (one layout)."""
    general = helper.make_node("Conv", ["x", "W1"], ["c1"], kernel_shape=[3, 3], pads=[1] * 4)
    depthwise = helper.make_node(
        "Conv", ["c1", "W2"], ["c2"], kernel_shape=[3, 3], pads=[2] * 4, dilations=[2, 2], group=7
    )
    consts = {"W1": rand(7, 5, 3, 3, seed=1), "W2": rand(7, 1, 3, 3, seed=2)}
    return model([general, depthwise], {"x": [1, 5, 9, 11]}, ["c2"], consts)


def test_autotune_keeps_one_weight_layout_per_layer(tmp_path: Path) -> None:
    require_opencl()
    from yaguar.engine.backends.opencl.autotune import TuneCache, tune_plan
    from yaguar.engine.backends.opencl.executor import Plan
    from yaguar.engine.backends.opencl.runtime import open_runtime

    m = two_conv_model()
    rt = open_runtime(None, tmp_path)
    plan = Plan(m, rt, None, False)
    untuned = len(plan.lowerer.buffers)
    # two candidates per layer keep the test short (each is a program build on a cold cache); the
    # general conv's two read different weight layouts
    general, depthwise = (launch.tune for launch in plan.launches if launch.tune is not None)
    general.candidates = [{"TM": 4, "NV": 1}, {"TM": 8, "NV": 1}]
    depthwise.candidates = depthwise.candidates[:2]
    assert tune_plan(plan, TuneCache(tmp_path, rt)) == 2
    # every candidate tile built its weights; only the chosen layouts stay with the plan
    assert len(plan.lowerer.buffers) == untuned
    x = rand(1, 5, 9, 11)
    ref = ort_run(m, {"x": x})[0]
    np.testing.assert_allclose(plan.run({"x": x})[0], ref, rtol=1e-5, atol=1e-4)
    # a second plan reuses the stored choices (rebuilding to them) and keeps one layout each too
    again = Plan(m, rt, None, False)
    before = len(again.lowerer.buffers)
    assert tune_plan(again, TuneCache(tmp_path, rt)) == 0
    assert len(again.lowerer.buffers) == before
    np.testing.assert_allclose(again.run({"x": x})[0], ref, rtol=1e-5, atol=1e-4)


def test_the_shape_pass_changes_no_attribute() -> None:
    from yaguar.engine.backends.opencl import frontend, shapes

    transpose = helper.make_node("Transpose", ["x"], ["t"])  # default perm: reversed
    concat = helper.make_node("Concat", ["t", "t"], ["y"], axis=-1)
    graph = frontend.load(model([transpose, concat], {"x": [1, 2, 3]}, ["y"]))
    assert graph.values["y"].shape == (3, 2, 2)
    for node in graph.nodes:
        before = copy.deepcopy(node.attrs)
        shapes.infer(graph, node)
        assert node.attrs == before
    # the front end spelt the defaults out once, for the passes after it
    assert graph.nodes[0].attrs["perm"] == [2, 1, 0] and graph.nodes[1].attrs["axis"] == 2


def test_pocl_workers_are_pinned_unless_the_environment_or_a_cpuset_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """POCL_AFFINITY=1 is asked for before the first platform query where this process may run on
    every CPU; a value already set is kept (POCL_AFFINITY=0 turns it off), and under a cpuset that
    leaves out some CPU it is not set (PoCL would pin worker i to CPU i)."""
    require_opencl()
    from yaguar.engine.backends.opencl import runtime

    every = set(range(os.cpu_count() or 1))
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: every)
    environ: dict[str, str] = {}
    assert runtime.pin_pocl_workers(environ) and environ == {"POCL_AFFINITY": "1"}
    environ = {"POCL_AFFINITY": "0"}
    assert not runtime.pin_pocl_workers(environ) and environ == {"POCL_AFFINITY": "0"}
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: every - {0} or {1})
    environ = {}
    assert not runtime.pin_pocl_workers(environ) and environ == {}
