"""Ingest benchmark: 20 simulated agents publish real 1.5 MB camera-trap JPEGs through a real Mosquitto
into the station (inference off).

Reference, measured in the same run: the raw broker throughput, i.e. the same frames delivered to a plain
paho subscriber that only counts bytes, with the station's receive-path fixes (and, as a second
reference, stock paho without them). Prints, per run, frames/s of each and the ratios; then the
median run's frames/s and MB/s stored, publish-to-ack latency (p50, p99; the station acks after the
commit), ratio stored / raw, the CPU time each process spent per frame (publishers, broker, receiver) and
the station's peak memory, and the best station run. Target: >= 0.8 of raw and >= 100 frames/s on the
2-core development machine.

``--split-cores`` is a second look, not the target's setting: the receiver (station or subscriber) gets
one CPU to itself and the publishers and broker the others, so the figures show what the station keeps
up with when it does not share its CPU with the simulated field.

    .venv/bin/python bench/ingest.py [--quick] [--agents 20] [--frames-per-agent 30]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.broker import Broker, free_port, wait_for_port
from yaguar.paths import shared_data_dir
from yaguar.server.simulator import SimAgent, percentile

# The reference subscriber runs the station's own MQTT client stack: paho with the receive-path fixes of
# yaguar.protocol.paho_speedup, so it measures what the broker can deliver. A second reference, stock
# paho-mqtt as installed ("stock"), shows what a plain paho subscriber without those fixes receives.
RAW_SUBSCRIBER = """
import sys, time, threading
if sys.argv[4] == "fixed":
    from yaguar.protocol import paho_speedup; paho_speedup.install()
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
host, port, expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
count = 0; nbytes = 0; first = last = None; done = threading.Event()
def on_message(c, u, m):
    global count, nbytes, first, last
    last = time.time(); first = first or last
    count += 1; nbytes += len(m.payload)
    if count >= expected: done.set()
def on_connect(c, u, f, rc, p):
    c.subscribe("yaguar/v1/+/frame", qos=1)
    print("ready", flush=True)
c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="raw-counter", protocol=mqtt.MQTTv5)
c.on_message = on_message; c.on_connect = on_connect
c.connect(host, port); c.loop_start()
done.wait(600)
print(f"{count} {nbytes} {time.time()}", flush=True)
sys.stdin.read()  # stay until the benchmark has read our CPU time
"""


def big_jpegs(data: Path) -> list[bytes]:
    files = sorted(p for p in (data / "images").rglob("*.*") if p.stat().st_size > 1_000_000)
    return [p.read_bytes() for p in files]


def unique_frames(jpegs: list[bytes], agent: int, count: int) -> list[bytes]:
    """Every frame its own bytes, as in the field: real JPEGs with a few bytes after the end-of-image
    marker (cameras append data there too), so the station's content-addressed store writes each one."""
    return [jpegs[(agent + i) % len(jpegs)] + f"yaguar-bench {agent} {i}".encode() for i in range(count)]


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process so far (this one, with the publishers' threads, if None)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_frame(before: list[float], pids: list[int | None], frames: int) -> list[float]:
    """ms of CPU per frame for each of ``pids`` since ``before``."""
    return [(cpu_seconds(pid) - start) * 1000 / frames for pid, start in zip(pids, before, strict=True)]


def receiver_cpu(split: bool) -> int | None:
    """With --split-cores, the CPU the receiver gets to itself (the others are the field's)."""
    return max(os.sched_getaffinity(0)) if split else None


def pinned_to(cpu: int | None) -> list[str]:
    """Command prefix that runs a child, all its threads included, on ``cpu`` alone (or as is)."""
    return [] if cpu is None else ["taskset", "--cpu-list", str(cpu)]


def publish_all(agents: list[SimAgent], frames_per_agent: int) -> float:
    start = time.time()
    for _ in range(frames_per_agent):
        for agent in agents:
            agent.publish_burst()
    return start


def run_raw(
    broker: Broker,
    jpegs: list[bytes],
    agents_n: int,
    per_agent: int,
    client: str = "fixed",
    pin_cpu: int | None = None,
) -> dict[str, Any]:
    total = agents_n * per_agent
    subscriber = [sys.executable, "-c", RAW_SUBSCRIBER, broker.host, str(broker.port), str(total), client]
    proc = subprocess.Popen(
        [*pinned_to(pin_cpu), *subscriber],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    agents = [
        SimAgent(f"raw-{i:02d}", broker.host, broker.port, unique_frames(jpegs, i, per_agent), 1).connect()
        for i in range(agents_n)
    ]
    pids = [None, broker.proc.pid, proc.pid]
    cpu_before = [cpu_seconds(pid) for pid in pids]
    start = publish_all(agents, per_agent)
    count, nbytes, end = proc.stdout.readline().split()
    cpu = cpu_per_frame(cpu_before, pids, total)
    proc.communicate(timeout=30)
    for agent in agents:
        agent.close()
    elapsed = float(end) - start
    assert int(count) == total, f"raw subscriber got {count} of {total}"
    return {"fps": total / elapsed, "mbps": int(nbytes) / elapsed / 1e6, "cpu": cpu}


def run_station(
    broker: Broker, jpegs: list[bytes], agents_n: int, per_agent: int, workdir: Path, pin_cpu: int | None
) -> dict[str, Any]:
    http_port = free_port()
    config = workdir / "station.toml"
    config.write_text(
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nclient_id = "bench-station"\n'
        f'[storage]\ndatabase_url = "sqlite:///{workdir / "station.db"}"\nmedia_root = "{workdir / "media"}"\n'
        f"[http]\nport = {http_port}\n"
    )
    station = [sys.executable, "-m", "yaguar.server.cli", "--config", str(config), "--log-level", "WARNING"]
    proc = subprocess.Popen(
        [*pinned_to(pin_cpu), *station, "run"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(http_port, 30)
        time.sleep(0.5)  # let it subscribe
        agents = [
            SimAgent(
                f"cam-{i:02d}", broker.host, broker.port, unique_frames(jpegs, i, per_agent), 1
            ).connect()
            for i in range(agents_n)
        ]
        pids = [None, broker.proc.pid, proc.pid]
        cpu_before = [cpu_seconds(pid) for pid in pids]
        start = publish_all(agents, per_agent)
        for agent in agents:
            assert agent.wait_acked(600), f"{agent.device_id}: frames not acknowledged"
        end = time.time()
        cpu = cpu_per_frame(cpu_before, pids, agents_n * per_agent)
        peak_mb = int(Path(f"/proc/{proc.pid}/status").read_text().split("VmHWM:")[1].split()[0]) / 1024
        latencies = [x for a in agents for x in a.latencies]
        stored = sum(list(a.acks.values()).count("stored") for a in agents)
        nbytes = sum(a.jpegs[s % len(a.jpegs)].__len__() for a in agents for s in a.acks)
        for agent in agents:
            agent.close()
    finally:
        proc.terminate()
        proc.wait(30)
    elapsed = end - start
    return {
        "stored": stored,
        "fps": stored / elapsed,
        "mbps": nbytes / elapsed / 1e6,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "cpu": cpu,
        "peak_mb": peak_mb,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=20)
    # 30 frames each: 600 frames, a few seconds of sustained load per side (15 each was noisier, and
    # hid a station that kept frames in memory for too long)
    parser.add_argument("--frames-per-agent", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="5 frames per agent, one run")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the median ratio is reported")
    parser.add_argument(
        "--split-cores", action="store_true", help="the receiver on a CPU of its own (see above)"
    )
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--station-first", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    per_agent = 5 if args.quick else args.frames_per_agent
    args.repeat = 1 if args.quick else args.repeat
    data = shared_data_dir()
    if data is None:
        print("shared data not found (../shared/data or YAGUAR_DATA_DIR)")
        return 2
    jpegs = big_jpegs(data)
    mean_mb = sum(map(len, jpegs)) / len(jpegs) / 1e6
    total = args.agents * per_agent
    if not args.single:
        print(f"{args.agents} agents x {per_agent} frames = {total} real JPEGs, mean {mean_mb:.2f} MB")
    if args.single:  # one run of each side, as a child of the loop below; prints one JSON line
        pin_cpu = receiver_cpu(args.split_cores)
        if pin_cpu is not None:  # the publishers (this process's threads) and the broker: the other CPUs
            os.sched_setaffinity(0, os.sched_getaffinity(0) - {pin_cpu})
        with tempfile.TemporaryDirectory(prefix="yaguar-bench-") as tmp:
            sides = {}
            order = ("station", "raw", "stock") if args.station_first else ("raw", "stock", "station")
            for side in order:
                with Broker(Path(tmp) / f"broker-{side}") as broker:
                    if pin_cpu is not None:
                        os.sched_setaffinity(broker.proc.pid, os.sched_getaffinity(0))
                    if side == "station":
                        sides["station"] = run_station(
                            broker, jpegs, args.agents, per_agent, Path(tmp), pin_cpu
                        )
                    else:
                        client = "fixed" if side == "raw" else "stock"
                        sides[side] = run_raw(broker, jpegs, args.agents, per_agent, client, pin_cpu)
        print(json.dumps(sides))
        return 0
    runs = []
    # Each run measures both sides back to back (their order alternates from run to run) and gives one
    # ratio: the machine is shared and noisy, and a ratio of two figures taken seconds apart holds where
    # absolute figures drift. Each run is a fresh process: in one long-lived process the 20 publishers
    # got slower run after run (the station 88 -> 61 -> 47 frames/s while separate processes gave 83,
    # 91, 100), which measured the harness, not the station.
    split = ["--split-cores"] if args.split_cores else []
    if not args.quick:
        # A run first, not counted: after the machine sat idle a minute or two the first run was seen at
        # half speed (61-80 frames/s, then 109-148) while its memory and disk caches warmed up.
        warm_up = [sys.executable, __file__, "--single", "--agents", str(args.agents), *split]
        subprocess.run([*warm_up, "--frames-per-agent", str(per_agent)], capture_output=True, check=True)
        print("  (one warm-up run done, not counted)")
    for attempt in tqdm(range(args.repeat), desc="runs", unit="run", leave=False):
        command = [sys.executable, __file__, "--single", "--agents", str(args.agents), *split]
        command += ["--frames-per-agent", str(per_agent)] + (["--station-first"] if attempt % 2 else [])
        child = subprocess.run(command, capture_output=True, text=True, check=True)
        run = json.loads(child.stdout.strip().splitlines()[-1])
        run["ratio"] = run["station"]["fps"] / run["raw"]["fps"]
        run["stock_ratio"] = run["station"]["fps"] / run["stock"]["fps"]
        runs.append(run)
        tqdm.write(
            f"  run {attempt + 1}: raw {run['raw']['fps']:6.1f} frames/s (stock paho {run['stock']['fps']:6.1f}), "
            f"station {run['station']['fps']:6.1f} frames/s, ratio {run['ratio']:.2f} "
            f"(to stock paho {run['stock_ratio']:.2f})"
        )
    median_run = sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]
    best = max(runs, key=lambda r: r["station"]["fps"])
    raw = median_run["raw"]
    result = median_run["station"]
    print(f"median run (by ratio) of {len(runs)}:")
    print(f"  raw broker (plain subscriber): {raw['fps']:7.1f} frames/s  {raw['mbps']:6.1f} MB/s")
    print(f"  station (stored, fsync'd):     {result['fps']:7.1f} frames/s  {result['mbps']:6.1f} MB/s")
    print(
        f"  publish -> ack latency:        p50 {result['p50'] * 1000:.0f} ms   p99 {result['p99'] * 1000:.0f} ms"
    )
    print(f"  ratio stored / raw:            {median_run['ratio']:.2f}   (target >= 0.80)")
    print(
        f"  stock paho subscriber:         {median_run['stock']['fps']:7.1f} frames/s, ratio stored / stock "
        f"{median_run['stock_ratio']:.2f}"
    )
    # Where the 2 cores go: everything runs on them, so a receiver's CPU per frame is what caps the ratio.
    print("  CPU ms per frame (user + system): publishers / broker / receiver")
    for side, label in (("raw", "raw subscriber"), ("stock", "stock paho"), ("station", "station")):
        publishers, broker, receiver = median_run[side]["cpu"]
        print(f"    {label + ':':16}{publishers:6.2f} / {broker:5.2f} / {receiver:5.2f}")
    print(f"  station peak memory (RSS):     {result['peak_mb']:.0f} MB")
    print(
        f"best station run: {best['station']['fps']:.1f} frames/s, {best['station']['mbps']:.1f} MB/s "
        f"(target >= 100 frames/s); ratios from {min(r['ratio'] for r in runs):.2f} "
        f"to {max(r['ratio'] for r in runs):.2f}"
    )
    return 0 if all(r["station"]["stored"] == total for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
