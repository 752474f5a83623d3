"""Benchmark of the inference backends on this machine: onnxruntime (CPU) vs our OpenCL kernels.

Same run, same inputs (real images from the shared data, letterboxed / resized as each model
wants): YOLOX-nano, FastestDet and MobileNetV2 (int8 QDQ) at batch 1 and batch 8. Prints, per
model and batch, milliseconds per image for both backends and the ratio onnxruntime / OpenCL
(> 1: OpenCL is faster; the PoCL target is >= 0.5 for YOLOX-nano at batch 8), then the top kernels
of one profiled OpenCL run (OpenCL profiling events) with their achieved GFLOP/s and GB/s.
onnxruntime is the station's own OnnxRuntimeBackend (one thread per core, thread spinning off as
the station runs it; --ort-spinning turns it on) on a copy of each model re-batched to N (its
Reshape targets fixed the same way the OpenCL planner fixes them), so both sides process a real
batch. Conv tiles chosen by an earlier --autotune run (cached on disk, keyed by device, driver and
the conv kernels' source, so an edited kernel starts from the defaults again) are used when present.

    .venv/bin/python bench/engine.py [--quick] [--device SUBSTRING] [--fp16] [--autotune]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
from tqdm import tqdm

from yaguar.paths import shared_data_dir

MODELS = {
    "yolox_nano": ("yolox_nano.onnx", "letterbox", 416),
    "fastestdet": ("fastestdet.onnx", "resize01", 352),
    "mobilenet_v2": ("mobilenet_v2_1.0_224_quant.onnx", "nhwc_u8", 224),
}


def images(data: Path, count: int, prep: str, size: int) -> np.ndarray:
    paths = sorted((data / "images" / "classic").glob("*.jpg")) + sorted(
        (data / "images" / "jaguar").glob("*.jpg")
    )
    out = []
    for p in (paths * 4)[:count]:
        img = cv2.imread(str(p))
        if prep == "letterbox":
            r = min(size / img.shape[0], size / img.shape[1])
            small = cv2.resize(img, (int(img.shape[1] * r), int(img.shape[0] * r)))
            canvas = np.full((size, size, 3), 114, np.uint8)
            canvas[: small.shape[0], : small.shape[1]] = small
            out.append(canvas.transpose(2, 0, 1).astype(np.float32))
        elif prep == "resize01":
            out.append(cv2.resize(img, (size, size)).transpose(2, 0, 1).astype(np.float32) / 255.0)
        else:
            out.append(cv2.resize(img, (size, size))[:, :, ::-1])
    return np.ascontiguousarray(np.stack(out))


def rebatch(model: onnx.ModelProto, batch: int) -> onnx.ModelProto:
    """A copy of ``model`` with batch ``batch``: input dim 0 set, Reshape targets that baked the
    export's batch in fixed (found by the OpenCL graph loader, which plans the same change)."""
    from yaguar.engine.backends.opencl import frontend

    fixed = {}
    g = frontend.load(model, batch)
    for node in g.nodes:
        if node.op == "Reshape" and node.inputs[1].endswith(f"@batch{batch}"):
            fixed[node.inputs[1].split("@")[0]] = g.values[node.inputs[1]].const
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for inp in m.graph.input:
        if inp.type.tensor_type.shape.dim:
            inp.type.tensor_type.shape.dim[0].dim_value = batch
    for out in m.graph.output:
        out.type.tensor_type.shape.dim[0].dim_param = "N"
    del m.graph.value_info[:]
    for init in m.graph.initializer:
        if init.name in fixed:
            init.CopyFrom(onnx.numpy_helper.from_array(fixed[init.name].astype(np.int64), init.name))
    for node in m.graph.node:
        if node.op_type == "Constant" and node.output[0] in fixed:
            arr = fixed[node.output[0]].astype(np.int64)
            del node.attribute[:]
            node.attribute.append(onnx.helper.make_attribute("value", onnx.numpy_helper.from_array(arr)))
    return m


def timed(fn, repeats: int) -> tuple[float, float]:
    """(best, median) wall milliseconds over ``repeats`` runs after a warm-up. The best is what
    we compare: on a machine shared with other jobs it is the least disturbed estimate of both."""
    fn()  # warm-up: first-run allocations, PoCL kernel specialisation
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1000, statistics.median(times) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (about 2 minutes)")
    ap.add_argument("--device", default=None, help='OpenCL device: substring of "platform / device"')
    ap.add_argument("--fp16", action="store_true", help="fp16 activation storage")
    ap.add_argument("--autotune", action="store_true", help="autotune conv tiles (cached on disk)")
    ap.add_argument(
        "--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS)
    )
    ap.add_argument("--batches", default="1,8")
    ap.add_argument(
        "--ort-spinning",
        action="store_true",
        help="let onnxruntime's threads spin (the station turns spinning off)",
    )
    ap.add_argument("--top", type=int, default=5, help="kernels listed per model and batch")
    args = ap.parse_args()

    import onnxruntime as ort

    from yaguar.engine.backends.onnxruntime_backend import OnnxRuntimeBackend
    from yaguar.engine.backends.opencl import OpenCLBackend

    data = shared_data_dir()
    if data is None:
        print("shared data (../shared/data or YAGUAR_DATA_DIR) not found: nothing to benchmark")
        return 1
    repeats = 3 if args.quick else 10
    batches = [int(b) for b in args.batches.split(",")]
    options = {"device": args.device, "fp16": args.fp16, "autotune": args.autotune}
    rows, tables = [], []
    workdir = tempfile.TemporaryDirectory()  # the re-batched copies onnxruntime loads
    jobs = [(name, b) for name in args.models.split(",") for b in batches]
    for name, batch in tqdm(jobs, desc="benchmark", unit="case"):
        file, prep, size = MODELS[name]
        path = data / "models" / file
        model = onnx.load(str(path))
        x = images(data, batch, prep, size)
        batched = Path(workdir.name) / f"{name}_batch{batch}.onnx"
        onnx.save(rebatch(model, batch), str(batched))
        ref_be = OnnxRuntimeBackend(batched, {"allow_spinning": args.ort_spinning})
        in_name = ref_be.inputs[0].name
        ocl = OpenCLBackend(path, options)
        feeds = {in_name: x}
        ref, got = ref_be.run(feeds)[0], ocl.run(feeds)[0]
        diff = float(np.abs(ref.astype(np.float64) - got.astype(np.float64)).max())
        ort_best, ort_med = (t / batch for t in timed(lambda r=ref_be, f=feeds: r.run(f), repeats))
        ocl_best, ocl_med = (t / batch for t in timed(lambda o=ocl, f=feeds: o.run(f), repeats))
        rows.append((name, batch, ort_best, ocl_best, ort_med, ocl_med, diff))
        per = collections.defaultdict(lambda: [0.0, 0.0, 0.0, 0])
        runs = [ocl.profile(feeds) for _ in range(3)]  # per launch, the least disturbed of 3 runs
        prof = [min((r[i] for r in runs), key=lambda k: k.ms) for i in range(len(runs[0]))]
        for k in prof:
            agg = per[k.kernel]
            agg[0] += k.ms
            agg[1] += k.flops
            agg[2] += k.nbytes
            agg[3] += 1
        total = sum(k.ms for k in prof)
        top = sorted(per.items(), key=lambda kv: -kv[1][0])[: args.top]
        tables.append((name, batch, total, len(prof), top))

    print(f"\nOpenCL device: {ocl.describe()}")
    spin = "on" if args.ort_spinning else "off, as the station runs it"
    print(
        f"onnxruntime {ort.__version__} CPU via the station's OnnxRuntimeBackend (one thread per core, "
        f"spinning {spin}); ms per image, best of {repeats} runs (median in brackets)\n"
    )
    print(
        f"{'model':14s} {'batch':>5s} {'onnxruntime':>20s} {'opencl':>20s} {'ratio ort/ocl':>14s} {'max |diff|':>11s}"
    )
    for name, batch, o_ms, c_ms, o_med, c_med, diff in rows:
        print(
            f"{name:14s} {batch:5d} {o_ms:8.2f} ({o_med:7.2f}) ms {c_ms:8.2f} ({c_med:7.2f}) ms"
            f" {o_ms / c_ms:14.2f} {diff:11.3g}"
        )
    for name, batch, total, count, top in tables:
        print(
            f"\n{name} batch {batch}: {count} launches, {total:.1f} ms device time (per launch, best of 3 profiled runs); top kernels:"
        )
        for kname, (ms, flops, nbytes, n) in top:
            print(
                f"  {kname:24s} x{n:<4d} {ms:8.2f} ms {flops / ms / 1e6:8.1f} GFLOP/s {nbytes / ms / 1e6:7.2f} GB/s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
