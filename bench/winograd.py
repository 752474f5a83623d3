"""Winograd F(2x2,3x3) against the direct conv kernel, per layer, on the OpenCL device (PoCL here).

Dense 3x3 stride-1 convs with bias and SiLU (as YOLOv5's), batch 1: each layer runs as a one-conv
plan three ways in the same rounds, taking turns: the direct kernel with its default tile, the
direct kernel with the best of its tile-search candidates (with --tune: timed here, profiling
events; else the default tile again), and
Winograd. Milliseconds per run (median of the rounds, wall time of plan.run: upload, kernels,
download), and the ratio direct / Winograd (> 1: Winograd is faster). onnxruntime (one thread,
spinning off) runs the same graph as the named reference.

With ``--model FILE.onnx`` (e.g. a YOLOv5 imported by ``yaguar models import``), the whole graph
also runs with Winograd's default (dense 3x3 layers from 64 channels on a CPU device) against the
direct kernel for every layer, in the same rounds, at batch 1.

    flock /tmp/yaguar-bench.lock .venv/bin/python bench/winograd.py [--rounds N] [--model FILE.onnx]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

LAYERS = [(64, 80), (64, 40), (128, 80), (128, 40), (256, 20), (32, 40)]  # channels, size


def conv_silu(c: int, size: int):
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((c, c, 3, 3)) * 0.05).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("Sigmoid", ["c"], ["s"]),
        helper.make_node("Mul", ["c", "s"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def best_direct_tile(plan) -> dict[str, int]:
    """The direct kernel's fastest tile-search candidate (the tile search's own timing)."""
    from yaguar.engine.backends.opencl import autotune

    with tempfile.TemporaryDirectory() as tmp:
        cache = autotune.TuneCache(Path(tmp), plan.rt)
        plan.launches[0].tune.alternative = None  # direct tiles only
        autotune.tune_plan(plan, cache)
        return next(iter(cache.choices.values()))


def median_ms(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=5, help="runs per runner per round")
    ap.add_argument("--model", type=Path, help="also a whole ONNX graph, Winograd's default against direct")
    ap.add_argument("--tune", action="store_true", help="also time every direct tile (minutes per layer)")
    args = ap.parse_args()
    import onnxruntime as ort

    from yaguar.engine.backends.opencl.executor import Plan
    from yaguar.engine.backends.opencl.runtime import open_runtime

    rt = open_runtime(None, Path(tempfile.mkdtemp()))
    print(
        f"device: {rt.label}   load average: {os.getloadavg()[0]:.2f}   {time.strftime('%H:%M:%S UTC', time.gmtime())}"
    )
    print(f"{'layer':>22} {'ort ms':>8} {'direct ms':>10} {'tuned ms':>9} {'tile':>18} {'wino ms':>8} "
          f"{'direct/wino':>11} {'tuned/wino':>10} {'ort/wino':>8}")  # fmt: skip
    for c, size in LAYERS:
        m = conv_silu(c, size)
        x = np.random.default_rng(1).standard_normal((1, c, size, size)).astype(np.float32)
        direct = Plan(m, rt, None, False, tuning=True)  # every conv direct (no Winograd default)
        sig = direct.launches[0].tune.signature
        tile = (
            best_direct_tile(Plan(m, rt, None, False, tuning=True))
            if args.tune
            else direct.launches[0].tune.current
        )
        tuned = Plan(m, rt, None, False, choices={sig: tile})
        wino = Plan(m, rt, None, False, choices={sig: {"WINO": 1}})
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        feeds = {"x": x}
        runners: dict[str, Callable[[], object]] = {
            "ort": lambda s=sess, f=feeds: s.run(None, f),
            "direct": lambda p=direct, f=feeds: p.run(f),
            "tuned": lambda p=tuned, f=feeds: p.run(f),
            "wino": lambda p=wino, f=feeds: p.run(f),
        }
        ref = sess.run(None, {"x": x})[0]
        err = float(np.abs(wino.run({"x": x})[0] - ref).max())
        for fn in runners.values():
            fn()  # warm-up
        res: dict[str, list[float]] = {k: [] for k in runners}
        for _ in range(args.rounds):
            for k, fn in runners.items():
                res[k].append(median_ms(fn, args.reps))
        ms = {k: statistics.median(v) for k, v in res.items()}
        tile_s = ",".join(f"{k}{v}" for k, v in tile.items())
        print(f"{f'{c}->{c} {size}x{size}':>22} {ms['ort']:8.2f} {ms['direct']:10.2f} {ms['tuned']:9.2f} "
              f"{tile_s:>18} {ms['wino']:8.2f} {ms['direct'] / ms['wino']:11.2f} {ms['tuned'] / ms['wino']:10.2f} "
              f"{ms['ort'] / ms['wino']:8.2f}   max|wino-ort| {err:.2e}")  # fmt: skip
    if args.model:
        whole_graph(args.model, rt, args.rounds, args.reps)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


def whole_graph(path: Path, rt: object, rounds: int, reps: int) -> None:
    import onnx

    from yaguar.engine.backends.opencl.executor import Plan

    m = onnx.load(path)
    shape = [d.dim_value or 1 for d in m.graph.input[0].type.tensor_type.shape.dim]
    feeds = {m.graph.input[0].name: np.random.default_rng(0).random(shape, dtype=np.float32)}
    wino = Plan(m, rt, 1, False)
    direct = Plan(m, rt, 1, False, tuning=True)  # a plan about to be tuned: every conv direct
    count = sum(launch.kernel_name == "wino_gemm" for launch in wino.launches)
    diff = float(np.abs(wino.run(feeds)[0] - direct.run(feeds)[0]).max())
    res: dict[str, list[float]] = {"direct": [], "wino": []}
    for _ in range(rounds):
        for name, plan in (("direct", direct), ("wino", wino)):
            res[name].append(median_ms(lambda p=plan: p.run(feeds), reps))
    d, w = statistics.median(res["direct"]), statistics.median(res["wino"])
    print(f"{path.name}: {count} convs on Winograd; direct {d:.2f} ms, Winograd default {w:.2f} ms, "
          f"direct/wino {d / w:.2f}; max|wino-direct| {diff:.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
