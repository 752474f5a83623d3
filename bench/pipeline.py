"""Benchmark of the engine and the station pipeline on this machine.

Prints, each with the reference it is compared with in the same run:
- per model: latency at batch 1 and throughput at batch 8 (models exported with a fixed batch of 1 run
  the 8 images one call each; the figure is then what the pipeline's batching gets from them);
- JPEG decode of 12 MP frames: full size vs reduced (libjpeg DCT scaling), and the speed-up;
- the whole station pipeline (decode + motion + detect + classify + store, the real PipelineComponent on
  a temp SQLite) in frames/s on 12 MP real frames, and its ratio to the sum of its stages measured alone;
  first the old single pass (one pass at 416x416, the station before issue 13), then the defaults (or
  each ``--config``), each as frames/s and its ratio to the old single pass.

12 MP frames are made once by upscaling real camera-trap frames with OpenCV, in a temp dir.
Usage: .venv/bin/python bench/pipeline.py [--quick] [--frames N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from yaguar.engine.analyser import Analyser, FrameInput
from yaguar.engine.classifier import Classifier, crop
from yaguar.engine.config import PipelineConfig
from yaguar.engine.decode import decode_jpeg
from yaguar.engine.detector import Detector
from yaguar.engine.look import LookFrame
from yaguar.engine.manifest import find_manifest
from yaguar.paths import shared_data_dir
from yaguar.server.config import config_from_dict
from yaguar.server.context import StationContext, StationHooks
from yaguar.server.pipeline import PipelineComponent
from yaguar.server.pipeline.leases import claim_frames
from yaguar.server.pipeline.store import store_results
from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.models import Device, Media

SIZE_12MP = (4000, 3000)
CAMERAS = 6
# The station before issue 13: one pass of the detector at its own input size (416x416), nothing else.
# The reference every pipeline run is compared with, measured in the same run.
PLAIN_LOOK: dict[str, Any] = {
    "closer_input": None,
    "second_opinion": 0,
    "motion_crops": False,
    "overlay_band": 0,
    "crop_min_side": 0,
    "fit_shape": False,
}
OLD_SINGLE_PASS = json.dumps({"look": PLAIN_LOOK})
BURST_MEDIA = Path("camtrap-dp-1.0.2") / "example" / "media"  # one real PIR burst, 10 frames in order


def make_frames(images: Path, out: Path, count: int, burst: list[Path] | None = None) -> list[Path]:
    """Upscale real frames to 12 MP once, then vary them (crop offset, quality) so each file differs.
    ``burst``: the frames of one real PIR burst, in order, repeated (each repeat shifted as a whole)."""
    sources = burst or sorted((images / "jaguar").glob("*.jpg")) + sorted(
        p for p in (images / "camera-trap").glob("*") if p.stat().st_size > 0
    )
    bases = [
        cv2.resize(cv2.imread(str(p)), (SIZE_12MP[0] + 16, SIZE_12MP[1] + 16), interpolation=cv2.INTER_CUBIC)
        for p in sources[: len(sources) if burst else min(len(sources), 8)]
    ]
    paths = []
    for i in range(count):
        base = bases[i % len(bases)]
        shift = i // len(bases) if burst else i  # a burst's frames keep the camera's framing
        dx, dy = shift % 16, (shift * 3) % 16
        frame = base[dy : dy + SIZE_12MP[1], dx : dx + SIZE_12MP[0]]
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 88 + i % 5])
        assert ok
        path = out / f"frame_{i:04d}.jpg"
        path.write_bytes(data.tobytes())
        paths.append(path)
    return paths


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def bench_models(models_dir: Path, images: Path, repeat: int) -> None:
    print("== models (onnxruntime CPU) ==")
    dog = cv2.imread(str(images / "classic" / "dog.jpg"))
    for name in ("yolox_nano", "fastestdet"):
        detector = Detector(find_manifest(name), models_dir)
        one = timed(lambda d=detector: d.detect([dog]), repeat)
        eight = timed(lambda d=detector: d.detect([dog] * 8), max(1, repeat // 4))
        print(
            f"{detector.ident:34} batch 1: {one * 1000:7.1f} ms   batch 8: {8 / eight:6.1f} img/s "
            f"(x{(8 / eight) / (1 / one):.2f} of batch 1; model batch {detector.max_batch})"
        )
    for name in ("mobilenet_v2_imagenet_quant", "mobilenet_v2_inat_bird_quant"):
        classifier = Classifier(find_manifest(name), models_dir)
        one = timed(lambda c=classifier: c.classify([dog]), repeat)
        eight = timed(lambda c=classifier: c.classify([dog] * 8), max(1, repeat // 4))
        print(
            f"{classifier.ident:34} batch 1: {one * 1000:7.1f} ms   batch 8: {8 / eight:6.1f} img/s "
            f"(x{(8 / eight) / (1 / one):.2f} of batch 1)"
        )


def bench_decode(frames: list[Path], min_side: int) -> None:
    print("== JPEG decode, 12 MP ==")
    data = [p.read_bytes() for p in frames[:4]]
    full = timed(lambda: [decode_jpeg(d) for d in data], 2) / len(data)
    reduced_img = decode_jpeg(data[0], min_side)
    reduced = timed(lambda: [decode_jpeg(d, min_side) for d in data], 4) / len(data)
    print(
        f"full {SIZE_12MP[0]}x{SIZE_12MP[1]}: {full * 1000:6.1f} ms   reduced 1/{reduced_img.scale} "
        f"({reduced_img.pixels.shape[1]}x{reduced_img.pixels.shape[0]}): {reduced * 1000:6.1f} ms   "
        f"speed-up x{full / reduced:.2f}"
    )


def station_context(workdir: Path, config: PipelineConfig) -> StationContext:
    station = config_from_dict(
        {
            "storage": {
                "database_url": f"sqlite:///{workdir / 'station.db'}",
                "media_root": str(workdir / "media"),
                "sqlite_synchronous": "NORMAL",
            },
            "pipeline": config.model_dump(mode="json"),
        },
        env={},
    )
    engine = make_db_engine(station.storage.database_url, "NORMAL")
    upgrade(engine)
    return StationContext(
        config=station,
        engine=engine,
        session_factory=make_session_factory(engine),
        media_root=workdir / "media",
        metrics=CollectorRegistry(),
        hooks=StationHooks(),
    )


def camera_and_burst(index: int, burst: int) -> tuple[int, str]:
    """Which camera took frame ``index`` and in which trigger: unrelated frames go round the cameras,
    each frame a trigger of its own (what one frame of a burst could tell of another would be made up);
    frames of real bursts go to one camera per burst, in order."""
    if burst:
        return (index // burst) % CAMERAS, f"r{index // burst}"
    return index % CAMERAS, f"b{index}"


def insert_frames(ctx: StationContext, frames: list[Path], burst: int = 0) -> list[int]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    with ctx.session_factory.begin() as session:
        for cam in range(CAMERAS):
            session.merge(Device(id=f"cam-{cam:02d}"))
        session.flush()
        for i, path in enumerate(frames):
            rel = f"f{i:05d}.jpg"
            dest = ctx.media_root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(path)
            cam, trigger = camera_and_burst(i, burst)
            media = Media(
                device_id=f"cam-{cam:02d}",
                seq=i,
                capture_id=f"c{i}",
                agent_event_id=trigger,
                burst_index=0,
                burst_size=1,
                trigger="pir",
                captured_at=t0 + timedelta(seconds=i),
                utc_offset_min=0,
                sha256=hashlib.sha256(rel.encode()).hexdigest(),
                size=1,
                width=0,
                height=0,
                path=rel,
            )
            session.add(media)
            session.flush()
            ids.append(media.id)
    return ids


def bench_pipeline(
    frames: list[Path],
    models_dir: Path,
    workdir: Path,
    overrides: dict[str, Any] | None = None,
    burst: int = 0,
) -> tuple[float, float, float]:
    """One pipeline run with these ``[pipeline]`` overrides; prints its figures, returns frames/s, CPU
    seconds per frame and the most frames/s idle cores could give."""
    print(
        f"== station pipeline, {len(frames)} frames of 12 MP, {CAMERAS} cameras; overrides {overrides or {}} =="
    )
    config = PipelineConfig.model_validate(
        {
            "enabled": True,
            "model_dir": models_dir,
            "skip_without_motion": False,
            "batch_size": 8,
            "poll_interval_s": 0.2,
            "batch_wait_ms": 10,
            "queue_size": 32,
            **(overrides or {}),
        }
    )
    # Stages alone, one after the other, on the same frames.
    analyser = Analyser(config)
    data = [p.read_bytes() for p in frames]
    start = time.perf_counter()
    images = [decode_jpeg(d, analyser.min_side) for d in data]
    t_decode = time.perf_counter() - start
    decoded = [FrameInput(i, f"cam-{i % CAMERAS:02d}", "b", decoded=image) for i, image in enumerate(images)]
    start = time.perf_counter()
    for f in decoded:
        analyser.motion.update(f.camera, f.decoded.pixels, f.burst_id)
    t_motion = time.perf_counter() - start
    start = time.perf_counter()
    # The station's passes: the first, and the closer ones where it is unsure (engine/look.py).
    found = [
        analyser.look.detect([LookFrame(f.decoded.pixels, False, [], lambda _: None)])[0] for f in decoded
    ]
    t_detect = time.perf_counter() - start
    start = time.perf_counter()
    crops = 0
    for f, dets in zip(decoded, found, strict=True):
        animals = [d for d in dets if d.category == "animal"]
        crops += len(animals)
        for classifier in analyser.classifiers:
            if animals:
                classifier.classify([crop(f.decoded.pixels, d.bbox) for d in animals])
    t_classify = time.perf_counter() - start
    alone_ctx = station_context(workdir / "alone", config)
    ids = insert_frames(alone_ctx, frames)
    results = analyser.analyse(
        [
            FrameInput(mid, f"cam-{i % CAMERAS:02d}", "b", decoded=f.decoded)
            for i, (mid, f) in enumerate(zip(ids, decoded, strict=True))
        ],
        use_motion=False,
    )
    with alone_ctx.session_factory.begin() as session:
        claim_frames(session, "bench", len(ids), 3600)  # stored results must be leased to their worker
    start = time.perf_counter()
    for k in range(0, len(results), 8):
        with alone_ctx.session_factory.begin() as session:
            store_results(session, results[k : k + 8], analyser.model_ident, 60, [], "bench")
    t_store = time.perf_counter() - start
    alone_ctx.engine.dispose()
    stages = {
        "decode": t_decode,
        "motion": t_motion,
        "detect": t_detect,
        "classify": t_classify,
        "store": t_store,
    }
    total = sum(stages.values())
    n = len(frames)
    print(
        "stages alone (ms/frame): "
        + ", ".join(f"{k} {v / n * 1000:.1f}" for k, v in stages.items())
        + f"; sum {total / n * 1000:.1f} ms = {n / total:.1f} frames/s ({crops} animal crops classified)"
    )

    ctx = station_context(workdir / "pipeline", config)
    ids = insert_frames(ctx, frames, burst)
    in_pipeline = Analyser(config)  # models loaded before the clock starts
    component = PipelineComponent(ctx, analyser=in_pipeline)
    start, cpu_start = time.perf_counter(), time.process_time()
    component.start()
    assert component.unavailable is None, component.unavailable
    # Watch the pipeline's own counters, not the database: a polling query would take SQLite's write
    # lock (BEGIN IMMEDIATE) and slow the writer it is timing.
    while (
        sum(
            ctx.metrics.get_sample_value("yaguar_pipeline_frames_total", {"outcome": o}) or 0
            for o in ("done", "skipped", "failed")
        )
        < n
    ):
        time.sleep(0.01)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    component.stop()
    with ctx.session_factory() as session:
        done = session.scalar(select(func.count()).where(Media.process_state == "done"))
    ctx.engine.dispose()
    print(
        f"pipeline end to end: {n / elapsed:.1f} frames/s "
        f"({elapsed / n * 1000:.1f} ms/frame, {done}/{n} done); "
        f"ratio to the sum of stages alone: {elapsed / total:.2f} "
        f"(overhead {max(0.0, elapsed / total - 1) * 100:.0f}%; below 1 means stages overlap on the cores)"
    )
    # CPU time is what a loaded machine distorts least: what the run cost, whoever else used the cores.
    # Idle cores could give at most: all the work spread on every core, and no faster than the one
    # inference thread (motion, detection, classification) gets through its part.
    cores = os.cpu_count() or 1
    ceiling = 1 / max(cpu / n / cores, in_pipeline.analyse_cpu / n)
    print(
        f"CPU of the run (all threads): {cpu / n * 1000:.1f} ms/frame, of which the inference thread "
        f"{in_pipeline.analyse_cpu / n * 1000:.1f}; {cores} idle cores would allow at most "
        f"{ceiling:.1f} frames/s"
    )
    busy = ", ".join(f"{k} {v / n * 1000:.1f}" for k, v in in_pipeline.timings.items())
    print(
        f"inside the pipeline (ms/frame; decode in {config.decode_threads()} threads beside inference): "
        f"{busy}"
    )
    return n / elapsed, cpu / n, ceiling


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames and repeats (< 2 minutes)")
    parser.add_argument("--frames", type=int, default=None, help="12 MP frames for the pipeline run")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        help="[pipeline] overrides as JSON: one pipeline run each (default: the station's defaults)",
    )
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the reference run (the old single pass: one pass at 416x416, as before issue 13)",
    )
    parser.add_argument("--pipeline-only", action="store_true", help="skip the model and decode figures")
    parser.add_argument(
        "--real-bursts",
        action="store_true",
        help="the frames are a real infrared PIR burst (the Camtrap DP example's 10 frames of a heron) "
        "repeated, each repeat a trigger of one camera, so that motion crops and the night closer look "
        "run as they do at a station; default: unrelated frames (the whole scene changes)",
    )
    args = parser.parse_args()
    shared = shared_data_dir()
    if shared is None:
        print("shared data (../shared/data or YAGUAR_DATA_DIR) is not present: nothing to benchmark")
        return 1
    models_dir, images = shared / "models", shared / "images"
    count = args.frames or (48 if args.quick else 144)
    repeat = 10 if args.quick else 40
    with tempfile.TemporaryDirectory(prefix="yaguar-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "frames").mkdir()
        start = time.perf_counter()
        burst = sorted((shared / BURST_MEDIA).glob("*.JPG")) if args.real_bursts else []
        frames = make_frames(images, workdir / "frames", count, burst)
        print(f"made {len(frames)} 12 MP frames in {time.perf_counter() - start:.1f} s")
        if not args.pipeline_only:
            bench_models(models_dir, images, repeat)
            bench_decode(frames, Detector(find_manifest("yolox_nano"), models_dir).min_side)
        runs = ([] if args.no_reference else [OLD_SINGLE_PASS]) + (args.config or ["{}"])
        rates = [
            bench_pipeline(frames, models_dir, workdir / f"run{index}", json.loads(text), len(burst))
            for index, text in enumerate(runs)
        ]
    if not args.no_reference:
        print("== frames/s against the old single pass, same run ==")
        (reference, reference_cpu, _), cores = rates[0], os.cpu_count() or 1
        for text, (rate, cpu, ceiling) in zip(runs, rates, strict=True):
            name = "old single pass" if text == OLD_SINGLE_PASS else f"overrides {text}"
            print(
                f"{name}: {rate:.1f} frames/s (x{rate / reference:.2f}); CPU {cpu * 1000:.1f} ms/frame "
                f"(x{cpu / reference_cpu:.2f}), at most {ceiling:.1f} frames/s on {cores} idle cores"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
