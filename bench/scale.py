"""Benchmark: pipeline workers (`yaguar-station worker`) sharing one PostgreSQL, 1, 2 and 3 of them.

For each count: analysed frames/s (from the moment the frames are stored until none is pending, the
workers already started and their models loaded), and the CPU each frame cost, split into the workers'
processes and the PostgreSQL server's. The reference is one worker in the same run: the speed-up of N
workers over it, and the parallel fraction p that Amdahl's law gives from it,
S(N) = 1 / ((1 - p) + p / N), taking N as the workers that had a CPU of their own (at most the cores).

The workload is the fault test's: small real frames in 5-frame bursts, no species classifiers, most
bursts still (the motion filter skips them), every 4th burst with an animal walking through (detector).
Needs root (PostgreSQL runs as the postgres user) and the shared data.
Usage: flock /tmp/yaguar-bench.lock .venv/bin/python bench/scale.py [--quick] [--frames N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.postgres import postgres_cluster
from tests.support.workers import (
    Workload,
    progress,
    release_held,
    start_worker,
    store_bursts,
    worker_config,
)
from yaguar.paths import shared_data_dir
from yaguar.server.pipeline.leases import claim_frames
from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def server_processes(url: str) -> list[psutil.Process]:
    """The PostgreSQL cluster's own processes (the postmaster and its backends)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        data_dir = conn.execute(text("SHOW data_directory")).scalar_one()
    engine.dispose()
    postmaster = psutil.Process(int((Path(data_dir) / "postmaster.pid").read_text().split()[0]))
    return [postmaster, *postmaster.children(recursive=True)]


def new_database(cluster_url: str, name: str) -> str:
    engine = create_engine(cluster_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return cluster_url.rsplit("/", 1)[0] + f"/{name}"


def run(cluster_url: str, workers: int, load: Workload, data: Path, workdir: Path) -> dict[str, float]:
    url = new_database(cluster_url, f"scale_{workers}")
    upgrade(make_db_engine(url))  # before the workers start: they would all upgrade at once otherwise
    media = workdir / f"media-{workers}"
    store_bursts(url, media, data / "images", load, state="held")  # not yet visible to the workers
    config = worker_config(workdir / f"worker-{workers}.toml", url, media, data / "models", lease_s=60)
    logs = [workdir / f"worker-{workers}-{i}.log" for i in range(workers)]
    procs = [start_worker(config, log) for log in logs]
    try:
        deadline = time.monotonic() + 300
        while not all("worker running" in log.read_text() for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("a worker did not start: " + logs[0].read_text()[-2000:])
            time.sleep(0.2)
        watched = [psutil.Process(p.pid) for p in procs]
        server = server_processes(url)
        cpu_workers, cpu_server = cpu_seconds(watched), cpu_seconds(server)
        start = time.perf_counter()
        release_held(url, "held")
        while progress(url).get("pending", 0) > 0:
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        cpu_workers = cpu_seconds(watched) - cpu_workers
        cpu_server = cpu_seconds(server_processes(url)) - cpu_server
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
    states = progress(url)
    return {
        "fps": load.total / elapsed,
        "worker_ms": 1000 * cpu_workers / load.total,
        "server_ms": 1000 * cpu_server / load.total,
        "detected": states.get("done", 0),
    }


def serial_ms_per_frame(cluster_url: str, load: Workload, data: Path, workdir: Path, batch: int) -> float:
    """Wall time per frame of the one serialised step, the claim (it holds the claim lock throughout)."""
    url = new_database(cluster_url, "scale_claims")
    store_bursts(url, workdir / "media-claims", data / "images", load)
    engine = make_db_engine(url)
    sessions = make_session_factory(engine)
    start = time.perf_counter()
    claimed = 0
    while True:
        with sessions.begin() as session:
            got = len(claim_frames(session, "bench", batch, 600))
        if not got:
            break
        claimed += got
    elapsed = time.perf_counter() - start
    engine.dispose()
    return 1000 * elapsed / claimed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=2000, help="frames per run (bursts of 5 on 40 cameras)")
    parser.add_argument("--quick", action="store_true", help="400 frames")
    args = parser.parse_args()
    data = shared_data_dir()
    if data is None:
        print("shared data not found (../shared/data or YAGUAR_DATA_DIR)")
        return 2
    frames = 400 if args.quick else args.frames
    cameras = 40
    load = Workload(cameras=cameras, bursts=max(1, frames // (cameras * 5)), frames=5, moving_every=4)
    cores = len(os.sched_getaffinity(0))
    print(
        f"{load.total} frames ({cameras} cameras, bursts of 5, 1 in 4 moving); {cores} CPUs; "
        f"load average {os.getloadavg()[0]:.1f} at {time.strftime('%H:%M:%S UTC', time.gmtime())}"
    )
    results: dict[int, dict[str, float]] = {}
    with postgres_cluster() as cluster_url, tempfile.TemporaryDirectory(prefix="yaguar-scale-") as tmp:
        serial = serial_ms_per_frame(cluster_url, load, data, Path(tmp), batch=16)
        for workers in (1, 2, 3):
            results[workers] = result = run(cluster_url, workers, load, data, Path(tmp))
            speedup = result["fps"] / results[1]["fps"]
            line = (
                f"{workers} worker{'s' if workers > 1 else ' '}: {result['fps']:7.1f} frames/s   "
                f"CPU per frame: workers {result['worker_ms']:5.2f} ms + PostgreSQL {result['server_ms']:5.2f} ms"
                f"   ({int(result['detected'])} frames through the detector)   speed-up x{speedup:.2f} of 1 worker"
            )
            used = min(workers, cores)
            if used > 1:
                parallel = (1 - 1 / speedup) / (1 - 1 / used)
                line += f"   Amdahl parallel fraction p = {parallel:.2f} (N = {used})"
            print(line, flush=True)
    one = results[1]["worker_ms"] + results[1]["server_ms"]
    p = 1 - serial / one
    print(
        f"Per-frame cost: {one:.2f} ms of CPU, of which the serialised claim takes {serial:.3f} ms "
        f"(wall, under the claim lock): Amdahl parallel fraction p = {p:.4f}; predicted speed-up "
        + ", ".join(f"x{1 / ((1 - p) + p / n):.1f} at {n} cores" for n in (2, 3, 8, 32))
    )
    print(
        "(The measured speed-ups above share this machine's cores with other work; the per-frame cost "
        "and the prediction from it are the figures to compare.)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
