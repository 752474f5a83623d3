"""Benchmark of the inference backends on this machine: onnxruntime (CPU) vs our OpenCL kernels.

Same run, same inputs (real images from the shared data, letterboxed / resized as each model
wants): YOLOX-nano, FastestDet and MobileNetV2 (int8 QDQ) at batch 1 and batch 8, and the int8
detectors of ``yaguar models quantize`` where their files are present. Three runtimes per case,
milliseconds per image:

- onnxruntime with its default session options (one thread per physical core, threads spinning
  while they wait): the strongest CPU reference, and the one the issue's targets are against;
- onnxruntime as the station runs it (its OnnxRuntimeBackend: one thread per core, spinning off,
  so JPEG decoding keeps its cores): the fair reference for the station;
- our OpenCL backend with its default options. For the int8 QDQ models both of its paths run in
  the same rounds: the int8 kernels (``int8 = true``: 8-bit tensors, int32 sums; the "int8 kernels"
  column) and the same graph in fp32 with fake-quant (``int8 = false``, the "fp32 QDQ" column);
  the "opencl" column is the one the default picks (int8 kernels on a GPU, or on a CPU whose 1x1
  convs run on VNNI for a graph int8 end to end; else fp32), and "int8 gain" shows what the int8
  kernels give here.

Ratios are onnxruntime / OpenCL (> 1: OpenCL is faster). The runners take turns within each
round, and a second table gives each one's CPU time per image (every thread), the work a run
costs however busy a shared machine is. Where a float model and its int8 copy both ran, a last
table gives int8 / float speed per runtime (> 1: int8 is faster). Both onnxruntime sessions load a
copy of each model re-batched to N (its Reshape targets fixed the same way the OpenCL planner fixes them),
so all sides process a real batch. Then, per model and batch, a roofline table of one profiled
OpenCL run (OpenCL profiling events; for a QDQ model, of its int8 kernels), per kernel: FLOPs, bytes moved, achieved GFLOP/s and GB/s
here, and the time the same work needs at the RX 580's published peaks (6.2 TFLOP/s fp32,
256 GB/s), the station card's ceiling: max(FLOPs / peak, bytes / bandwidth). The int8 kernels'
rows (``int8`` column) count their 8-bit tensors and weights at one byte each, a quarter of fp32;
their integer multiply-adds are counted at the fp32 peak (the RX 580 has no faster int8 path). Conv tiles chosen by
an earlier --autotune run (cached on disk, keyed by device, driver and the conv kernels' source)
are used when present.

With ``--overlap``, OpenCL also runs with ``overlap = true`` and ``overlap = false`` in the same
rounds, and a table gives the gain of running a batch's parts with their transfers on a second
queue (streams.py; by default only on GPUs).

    .venv/bin/python bench/engine.py [--quick] [--device SUBSTRING] [--fp16] [--autotune] [--overlap]

``--onnxruntime-only``: only onnxruntime with its defaults, each float model against its int8 copy
(``--model-dir`` where `yaguar models quantize` wrote it) at each batch, same rounds, with the ratio.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import statistics
import sys
import tempfile
import time
from functools import partial
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
    # int8 QDQ detectors from `yaguar models quantize` (skipped when their files are absent)
    "yolox_nano_int8": ("yolox_nano_int8.onnx", "letterbox", 416),
    "fastestdet_int8": ("fastestdet_int8.onnx", "resize01", 352),
}
RX580_FLOPS = 6.2e12  # fp32 FLOP/s, AMD's published peak for the RX 580 (the station's card)
RX580_BYTES = 256e9  # bytes/s of its GDDR5
SETTLE_S = 0.1  # pause between runners (outside the timed window)


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


def rx580_ms(flops: float, nbytes: float) -> float:
    """The least time the RX 580 needs for this work: compute- or memory-bound, whichever is slower."""
    return max(flops / RX580_FLOPS, nbytes / RX580_BYTES) * 1000


def process_cpu_s() -> float:
    """CPU seconds this process has used (user + system, every thread: onnxruntime's and PoCL's)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fns, repeats: int) -> tuple[list[tuple[float, float]], list[float]]:
    """(best, median) wall milliseconds of each function over ``repeats`` rounds after a warm-up,
    and the median CPU milliseconds of its runs. The functions take turns within each round, so
    load from other jobs on a shared machine falls on all of them alike; the best is what we
    compare, the least disturbed estimate of each. CPU time is the work a run costs however busy
    the machine is (wall time on a quiet machine is at least CPU time / cores)."""
    for fn in fns:
        fn()  # warm-up: first-run allocations, PoCL kernel specialisation
    times: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent, used in zip(fns, times, cpu, strict=True):
            c, t = process_cpu_s(), time.perf_counter()
            fn()
            spent.append(time.perf_counter() - t)
            used.append(process_cpu_s() - c)
            # onnxruntime's default threads spin on after a run: let them stop before the next
            # runner, whose wall and CPU time would otherwise carry them
            time.sleep(SETTLE_S)
    return [(min(t) * 1000, statistics.median(t) * 1000) for t in times], [
        statistics.median(c) * 1000 for c in cpu
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (about 2 minutes)")
    ap.add_argument("--device", default=None, help='OpenCL device: substring of "platform / device"')
    ap.add_argument("--fp16", action="store_true", help="fp16 activation storage")
    ap.add_argument("--autotune", action="store_true", help="autotune conv tiles (cached on disk)")
    ap.add_argument(
        "--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS)
    )
    ap.add_argument(
        "--model-dir",
        type=Path,
        action="append",
        default=[],
        help="also look for model files here (e.g. where `yaguar models quantize` wrote the int8 ones)",
    )
    ap.add_argument("--batches", default="1,8")
    ap.add_argument(
        "--overlap",
        action="store_true",
        help="also run OpenCL with overlap = true and false in the same rounds (the streams' gain)",
    )
    ap.add_argument("--top", type=int, default=8, help="kernels listed per model and batch")
    ap.add_argument(
        "--onnxruntime-only",
        action="store_true",
        help="only onnxruntime with its default session options: each float model against its int8 copy "
        "(and YOLOX-nano with the int8 graph's exact float rewrites), same rounds, no OpenCL",
    )
    args = ap.parse_args()
    if args.onnxruntime_only:
        return onnxruntime_only(args)

    import onnxruntime as ort

    from yaguar.engine.backends.base import BackendError
    from yaguar.engine.backends.onnxruntime_backend import OnnxRuntimeBackend
    from yaguar.engine.backends.opencl import OpenCLBackend
    from yaguar.engine.backends.opencl.backend import int8_default_for
    from yaguar.engine.backends.opencl.split import SplitPlan

    data = shared_data_dir()
    if data is None:
        print("shared data (../shared/data or YAGUAR_DATA_DIR) not found: nothing to benchmark")
        return 1
    dirs = [data / "models", *args.model_dir]
    where = {n: next((d / MODELS[n][0] for d in dirs if (d / MODELS[n][0]).exists()), None) for n in MODELS}
    repeats = 3 if args.quick else 10
    batches = [int(b) for b in args.batches.split(",")]
    options = {"device": args.device, "fp16": args.fp16, "autotune": args.autotune}
    names = [n for n in args.models.split(",") if where[n] is not None]
    missing = sorted(set(args.models.split(",")) - set(names))
    rows, tables, unsupported, cpu_rows = [], [], [], []
    started, load_before = time.strftime("%H:%M:%S UTC", time.gmtime()), os.getloadavg()[0]
    qdq_rows: dict[tuple[str, int], tuple[float, float]] = {}  # OpenCL int8 = true, false: ms per image
    plain_rows: dict[tuple[str, int], tuple[float, float, bool]] = {}  # overlap true, false: ms, ms, parts?
    workdir = tempfile.TemporaryDirectory()  # the re-batched copies onnxruntime loads
    jobs = [(name, b) for name in names for b in batches]
    for name, batch in tqdm(jobs, desc="benchmark", unit="case"):
        _, prep, size = MODELS[name]
        path = Path(str(where[name]))
        model = onnx.load(str(path))
        x = images(data, batch, prep, size)
        batched = Path(workdir.name) / f"{name}_batch{batch}.onnx"
        try:
            onnx.save(rebatch(model, batch), str(batched))
            ocl = OpenCLBackend(path, {**options, "int8": True})  # the int8 kernels, where the graph is QDQ
        except BackendError as exc:  # an op the OpenCL backend does not read yet: say so, go on
            unsupported.append(f"{name} batch {batch}: {exc}")
            continue
        station = OnnxRuntimeBackend(batched, {"allow_spinning": False})
        so = ort.SessionOptions()
        so.log_severity_level = 3
        default = ort.InferenceSession(str(batched), so, providers=["CPUExecutionProvider"])
        feeds = {station.inputs[0].name: x}
        runners = [partial(default.run, None, feeds), partial(station.run, feeds), partial(ocl.run, feeds)]
        chosen = ocl
        if any(
            la.kernel_name.startswith("conv2d") and "_q8[" in la.kernel_name
            for la in ocl.plan_for(feeds).launches
        ):
            fp32_qdq = OpenCLBackend(path, {**options, "int8": False})  # the same graph, fake-quant in fp32
            runners.append(partial(fp32_qdq.run, feeds))
            chosen = ocl if int8_default_for(ocl.runtime.device.type, ocl.int8_vnni, model) else fp32_qdq
        qdq_at = len(runners) - 1 if len(runners) > 3 else None
        chosen_at = 3 if chosen is not ocl else 2  # the "opencl" column: what the defaults run
        ref, got = default.run(None, feeds)[0], chosen.run(feeds)[0]
        diff = float(np.abs(ref.astype(np.float64) - got.astype(np.float64)).max())
        if args.overlap:  # the parts' transfers on a second queue, and all on the compute queue
            for overlap in (True, False):
                runners.append(partial(OpenCLBackend(path, {**options, "overlap": overlap}).run, feeds))
        times, cpu_ms = timed(runners, repeats)
        picked = [0, 1, chosen_at]
        row = (name, batch, *(t / batch for i in picked for t in times[i]), diff)
        rows.append(row)
        cpu_rows.append((name, batch, *(cpu_ms[i] / batch for i in picked)))
        if qdq_at is not None:
            qdq_rows[(name, batch)] = (times[2][0] / batch, times[qdq_at][0] / batch)
        if args.overlap:
            parts = isinstance(ocl.plan_for(feeds), SplitPlan)
            plain_rows[(name, batch)] = (times[-2][0] / batch, times[-1][0] / batch, parts)
        tqdm.write(
            f"{name} batch {batch}: onnxruntime defaults {row[2]:.2f}, station {row[4]:.2f}, "
            f"opencl {row[6]:.2f} ms per image (best of {repeats})"
        )
        per = collections.defaultdict(lambda: [0.0, 0.0, 0.0, 0])
        runs = [ocl.profile(feeds) for _ in range(3)]  # per launch, the least disturbed of 3 runs
        prof = [min((r[i] for r in runs), key=lambda k: k.ms) for i in range(len(runs[0]))]
        for k in prof:
            agg = per[k.kernel]
            agg[0] += k.ms
            agg[1] += k.flops
            agg[2] += k.nbytes
            agg[3] += 1
        tables.append((name, batch, len(prof), sorted(per.items(), key=lambda kv: -kv[1][0])))

    print(f"\nOpenCL device: {ocl.describe()}" if rows else "\nnothing ran")
    # the machine may be shared: the load says how much the figures below were disturbed
    print(
        f"run {started} to {time.strftime('%H:%M:%S UTC', time.gmtime())}, load average (1 min) "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    for line in unsupported:
        print(f"not on OpenCL: {line}")
    if missing:
        print(f"not in {', '.join(map(str, dirs))} (skipped): {', '.join(missing)}")
    print(
        f"onnxruntime {ort.__version__} on {os.cpu_count()} CPUs: 'defaults' = its default session options "
        f"(threads spin), 'station' = the station's OnnxRuntimeBackend (spinning off).\n"
        f"ms per image, best of {repeats} rounds in which the runtimes take turns (median in brackets); "
        f"ratio = onnxruntime / OpenCL\n"
    )
    print(
        f"{'model':16s} {'batch':>5s} {'ort defaults':>19s} {'ort station':>19s} {'opencl':>19s}"
        f" {'vs defaults':>11s} {'vs station':>10s} {'max |diff|':>10s} {'int8 kernels':>12s} {'fp32 QDQ':>9s}"
        f" {'int8 gain':>9s}"
    )
    for name, batch, d_ms, d_med, s_ms, s_med, c_ms, c_med, diff in rows:
        pair = qdq_rows.get((name, batch))
        extra = f" {pair[0]:12.2f} {pair[1]:9.2f} {pair[1] / pair[0]:9.2f}" if pair else ""
        print(
            f"{name:16s} {batch:5d} {d_ms:8.2f} ({d_med:7.2f}) {s_ms:8.2f} ({s_med:7.2f})"
            f" {c_ms:8.2f} ({c_med:7.2f}) {d_ms / c_ms:11.2f} {s_ms / c_ms:10.2f} {diff:10.3g}{extra}"
        )
    print(
        "\nCPU ms per image (median; user + system time of every thread: the work a run costs however "
        "busy the machine is; onnxruntime's defaults count their spinning)"
    )
    print(
        f"{'model':16s} {'batch':>5s} {'ort defaults':>12s} {'ort station':>12s} {'opencl':>8s} {'vs station':>10s}"
    )
    for name, batch, d_cpu, s_cpu, c_cpu in cpu_rows:
        print(f"{name:16s} {batch:5d} {d_cpu:12.2f} {s_cpu:12.2f} {c_cpu:8.2f} {s_cpu / c_cpu:10.2f}")
    if qdq_rows:
        print(
            "\nint8 kernels / fp32 QDQ: our OpenCL on the int8 graph with int8 = true / false (fp32, fake-quant),"
            " ms per image; int8 gain = fp32 QDQ / int8 kernels; the opencl column is the one the default"
            " picks per model (int8 kernels on a GPU, or on a CPU with VNNI for a graph int8 end to end;"
            " else fp32 QDQ)"
        )
    int8_vs_float(rows)
    overlap_table(plain_rows)
    for name, batch, count, kernels in tables:
        total = [sum(v[i] for _, v in kernels) for i in range(3)]
        print(
            f"\n{name} batch {batch}: {count} launches, {total[0]:.1f} ms device time here (per launch, "
            f"best of 3 profiled runs); RX 580 roofline {rx580_ms(total[1], total[2]):.2f} ms "
            f"({batch * 1000 / rx580_ms(total[1], total[2]):.0f} images/s at most)"
        )
        print(
            f"  {'kernel':30s} {'int8':>4s} {'launches':>8s} {'ms here':>8s} {'GFLOP':>8s} {'MB':>7s}"
            f" {'GFLOP/s':>8s} {'GB/s':>7s} {'RX580 ms':>9s} {'bound':>7s}"
        )
        for kname, (ms, flops, nbytes, n) in kernels[: args.top]:
            bound = "compute" if flops / RX580_FLOPS > nbytes / RX580_BYTES else "memory"
            int8 = "yes" if "_q8[" in kname or kname in ("quantize8", "dequant8") else ""
            print(
                f"  {kname:30s} {int8:>4s} {n:8d} {ms:8.2f} {flops / 1e9:8.3f} {nbytes / 1e6:7.2f}"
                f" {flops / ms / 1e6:8.1f} {nbytes / ms / 1e6:7.2f} {rx580_ms(flops, nbytes):9.3f} {bound:>7s}"
            )
    return 0


def onnxruntime_only(args: argparse.Namespace) -> int:
    """int8 / float speed on onnxruntime with its default session options (``--onnxruntime-only``):
    per batch, every model that is present and YOLOX-nano with the exact float rewrites that
    ``--silu-int8`` makes before quantising (its stem as one conv, its head's rows channels-last:
    quantize_layout.py) take turns in each round,
    so a busy machine slows them alike."""
    import onnxruntime as ort

    from yaguar.engine.quantize import prepared
    from yaguar.engine.quantize_layout import for_onnxruntime

    data = shared_data_dir()
    if data is None:
        print("shared data (../shared/data or YAGUAR_DATA_DIR) not found: nothing to benchmark")
        return 1
    dirs = [data / "models", *args.model_dir]
    names = [n for n in args.models.split(",") if any((d / MODELS[n][0]).exists() for d in dirs)]
    repeats = 3 if args.quick else 10
    work = tempfile.TemporaryDirectory()
    files = {n: next(d / MODELS[n][0] for d in dirs if (d / MODELS[n][0]).exists()) for n in names}
    if "yolox_nano" in files:  # the float reference with the int8 graph's own (exact) rewrites
        rewritten = Path(work.name) / "rewritten.onnx"
        onnx.save(for_onnxruntime(prepared(onnx.load(str(files["yolox_nano"])))), str(rewritten))
        files["yolox_nano rewritten"] = rewritten
    started, load_before = time.strftime("%H:%M:%S UTC", time.gmtime()), os.getloadavg()[0]
    results: dict[tuple[str, int], tuple[float, float]] = {}
    for batch in [int(b) for b in args.batches.split(",")]:
        sessions = []
        for name, path in files.items():
            _, prep, size = MODELS[name.split(" ")[0]]
            batched = Path(work.name) / f"{name.replace(' ', '_')}_{batch}.onnx"
            onnx.save(rebatch(onnx.load(str(path)), batch), str(batched))
            so = ort.SessionOptions()
            so.log_severity_level = 3
            session = ort.InferenceSession(str(batched), so, providers=["CPUExecutionProvider"])
            x = images(data, batch, prep, size)
            sessions.append(partial(session.run, None, {session.get_inputs()[0].name: x}))
        times, _ = timed(sessions, repeats)
        for name, (best, median) in zip(files, times, strict=True):
            results[(name, batch)] = (best / batch, median / batch)
    print(
        f"run {started} to {time.strftime('%H:%M:%S UTC', time.gmtime())}, load average (1 min) "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after; onnxruntime {ort.__version__} with its "
        f"default session options on {os.cpu_count()} CPUs; ms per image, best of {repeats} rounds "
        "(median in brackets), the models taking turns in each round"
    )
    print(
        f"{'model':20s} {'batch':>5s} {'ms per image':>18s} {'int8 speed vs float':>20s} {'vs float, rewritten':>20s}"
    )
    for (name, batch), (best, median) in results.items():
        ratio = ""
        if name.endswith("_int8") and (name[:-5], batch) in results:
            ratio = f"{results[(name[:-5], batch)][0] / best:20.2f}"
            stem = results.get((f"{name[:-5]} rewritten", batch))
            ratio += f" {stem[0] / best:20.2f}" if stem else ""
        print(f"{name:20s} {batch:5d} {best:8.2f} ({median:7.2f}) {ratio}")
    print(
        "int8 speed vs float: float ms / int8 ms (> 1: int8 is faster); vs float, rewritten: against YOLOX-nano "
        "float with the same exact graph rewrites (stem as one conv, head rows channels-last), the gain that is int8's"
    )
    return 0


def int8_vs_float(rows: list[tuple]) -> None:
    """int8 / float speed per runtime, for each model whose int8 copy ran at the same batch."""
    by_case = {(r[0], r[1]): r for r in rows}
    pairs = [(f, b) for (f, b) in by_case if (f + "_int8", b) in by_case]
    if not pairs:
        return
    print(f"\nint8 vs float, same run (float ms / int8 ms; > 1: int8 is faster)\n{'model':16s} {'batch':>5s}"
          f" {'ort defaults':>12s} {'ort station':>11s} {'opencl':>7s}")  # fmt: skip
    for f, b in pairs:
        fl, q = by_case[(f, b)], by_case[(f + "_int8", b)]
        print(f"{f:16s} {b:5d} {fl[2] / q[2]:12.2f} {fl[4] / q[4]:11.2f} {fl[6] / q[6]:7.2f}")


def overlap_table(plain_rows: dict[tuple[str, int], tuple[float, float, bool]]) -> None:
    """OpenCL with its parts' transfers overlapped vs overlap = false, same rounds."""
    if not plain_rows:
        return
    print(
        "\ntransfers overlapped (overlap = true: a second queue, streams.py) vs overlap = false, same rounds,"
        " ms per image"
        " (best); gain = plain / overlapped; only a batch run in parts uses the second queue"
    )
    print(f"{'model':16s} {'batch':>5s} {'parts':>5s} {'overlapped':>10s} {'plain':>8s} {'gain':>6s}")
    for (name, batch), (over, plain, parts) in plain_rows.items():
        print(
            f"{name:16s} {batch:5d} {'yes' if parts else 'no':>5s} {over:10.2f} {plain:8.2f} {plain / over:6.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
