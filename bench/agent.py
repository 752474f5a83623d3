"""Benchmark of the field agent on this machine.

Prints, each with the reference it is compared with in the same run:
- PIR edge -> first frame of the burst received by a subscriber (the station double, its own process),
  p50/p99/max (target p50 < 0.15 s). The edge is a gpiozero MockFactory pin driven high; the camera is
  the replay camera over the shared images (real camera-trap JPEGs, 50 KB - 1.5 MB). Reference: a bare
  paho client publishing the same JPEGs to the same subscriber (the MQTT floor under the agent).
- agent CPU-milliseconds per frame (process CPU time over frames sent and acknowledged). Reference: the
  bare paho client's CPU-ms per frame.
- resident memory of the agent process (peak RSS; the process also holds this harness), target < 80 MB.
  Reference: the same interpreter's RSS after its imports, before the agent starts.
- spool write throughput with fsync vs without (frames/s and MB/s of real JPEGs), and their ratio.

    .venv/bin/python bench/agent.py [--quick] [--triggers N] [--spool-frames N]
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion  # noqa: E402
from tqdm import tqdm  # noqa: E402

from tests.support.broker import Broker  # noqa: E402
from yaguar.paths import shared_data_dir  # noqa: E402
from yaguar.protocol.frame import build_meta, to_properties  # noqa: E402
from yaguar.protocol.topics import Kind, topic  # noqa: E402
from yaguar.server.simulator import percentile  # noqa: E402

DEVICE = "bench-cam"
REFERENCE_DEVICE = "bench-ref"
PROCESS_DEVICE = "bench-proc"


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the subscriber: its own process, prints "<device> <seq> <burst_index> <monotonic>" per frame --------


def station_double_main(host: str, port: int) -> None:
    from tests.integration.agent_support import StationDouble

    class _Broker:
        pass

    broker = _Broker()
    broker.host, broker.port = host, port  # type: ignore[attr-defined]
    lock = threading.Lock()

    def answer(meta) -> str:  # type: ignore[no-untyped-def]
        now = time.monotonic()  # CLOCK_MONOTONIC is system-wide: comparable with the parent's clock
        with lock:
            sys.stdout.write(f"{meta.device} {meta.seq} {meta.burst_index} {now:.6f}\n")
            sys.stdout.flush()
        return "stored"

    doubles = [
        StationDouble(broker, device, answer=answer, client_id=f"double-{device}").start()  # type: ignore[arg-type]
        for device in (DEVICE, REFERENCE_DEVICE, PROCESS_DEVICE)
    ]
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.read()  # until the parent closes our stdin
    for double in doubles:
        double.stop()


class Arrivals:
    """Reads the subscriber's lines in a thread; ``wait(device, predicate)`` returns a matching line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[tuple[str, int, int, float]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if len(parts) == 4:
                with self.cond:
                    self.lines.append((parts[0], int(parts[1]), int(parts[2]), float(parts[3])))
                    self.cond.notify_all()

    def wait_for(self, device: str, seq_at_least: int, burst_index: int | None, timeout: float = 10) -> float:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for dev, seq, index, at in self.lines:
                    if (
                        dev == device
                        and seq >= seq_at_least
                        and (burst_index is None or index == burst_index)
                    ):
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no frame from {device} with seq >= {seq_at_least}")
                self.cond.wait(left)


# -- measurements ----------------------------------------------------------------------------------------


def bench_reference(
    broker: Broker, arrivals: Arrivals, jpegs: list[bytes], count: int
) -> tuple[list[float], float]:
    """Bare paho: publish a JPEG with valid frame properties, time until the subscriber has it."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-ref-pub", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.connect(broker.host, broker.port)
    client.loop_start()
    latencies = []
    cpu0 = time.process_time()
    for i in range(count):
        payload = jpegs[i % len(jpegs)]
        meta = build_meta(
            payload,
            device=REFERENCE_DEVICE,
            seq=i,
            capture_id=f"r.{i}",
            event_id=f"r{i}",
            burst_index=0,
            burst_size=1,
            captured_at=datetime.now(UTC),
            trigger="test",
        )
        started = time.monotonic()
        client.publish(topic(REFERENCE_DEVICE, Kind.FRAME), payload, qos=1, properties=to_properties(meta))
        latencies.append(arrivals.wait_for(REFERENCE_DEVICE, i, None) - started)
    cpu_ms = (time.process_time() - cpu0) * 1000 / count
    client.disconnect()
    client.loop_stop()
    return latencies, cpu_ms


def bench_agent(
    broker: Broker, arrivals: Arrivals, images: Path, workdir: Path, triggers: int
) -> tuple[list[float], list[float], float, int]:
    """PIR edges into a real agent; latency edge -> first frame at the subscriber, and edge -> spooled."""
    from tests.integration.agent_support import agent_config, wait_until
    from yaguar.agent.service import Agent

    config = agent_config(
        workdir,
        broker,
        images,
        device_id=DEVICE,
        pir={"enabled": True, "pin": 17, "holdoff_s": 0, "sample_rate": 20},
        capture={"burst_size": 3, "burst_interval_s": 0.1},
    )
    agent = Agent(config).start()
    spooled_at: dict[int, float] = {}
    agent.worker.on_frame = lambda trigger, seq: spooled_at.setdefault(seq, time.monotonic())
    assert agent.publisher.connected.wait(10), "agent did not connect"
    pin = agent.pin_factory.pin(17)
    time.sleep(0.3)
    latencies, to_spool = [], []
    cpu0 = time.process_time()
    try:
        for _ in tqdm(range(triggers), desc="PIR triggers", unit="burst"):
            first_seq = agent.spool.next_seq
            edge = time.monotonic()
            pin.drive_high()
            latencies.append(arrivals.wait_for(DEVICE, first_seq, 0) - edge)
            assert wait_until(lambda s=first_seq: s in spooled_at, 5)
            to_spool.append(spooled_at[first_seq] - edge)
            pin.drive_low()
            # Let the burst finish and be acknowledged, so each edge starts from an idle agent.
            assert wait_until(
                lambda s=first_seq: agent.spool.depth == 0 and agent.spool.next_seq >= s + 3, 10
            )
            time.sleep(0.1)
        frames = agent.metrics.total("yaguar_agent_frames_sent")
        cpu_ms = (time.process_time() - cpu0) * 1000 / max(1, frames)
    finally:
        agent.stop()
    return latencies, to_spool, cpu_ms, frames


def proc_status(pid: int) -> dict[str, float]:
    """CPU seconds (user+system) and VmRSS/VmHWM in MB of another process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    result = {"cpu_s": (int(fields[11]) + int(fields[12])) / ticks}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            result[key] = int(value.split()[0]) / 1024
    return result


def bench_agent_process(
    broker: Broker, arrivals: Arrivals, images: Path, workdir: Path, seconds: int
) -> dict[str, float]:
    """The real `yaguar-agent run` in its own process, on a timelapse: its CPU per frame and memory."""
    config = workdir / "agent.toml"
    config.write_text(
        f'device_id = "{PROCESS_DEVICE}"\npin_factory = "mock"\nlog_level = "WARNING"\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        f'[camera]\ntype = "replay"\nfolder = "{images}"\n'
        "[capture]\nburst_size = 3\nburst_interval_s = 0.1\n[timelapse]\ninterval_s = 0.5\n"
        f'[pir]\npin = 17\n[spool]\ndir = "{workdir / "proc-spool"}"\n'
    )
    proc = subprocess.Popen([sys.executable, "-m", "yaguar.agent.cli", "--config", str(config), "run"])
    try:
        arrivals.wait_for(PROCESS_DEVICE, 0, None, timeout=30)
        start = proc_status(proc.pid)
        first = sum(1 for line in arrivals.lines if line[0] == PROCESS_DEVICE)
        for _ in tqdm(range(seconds), desc="agent process", unit="s"):
            time.sleep(1)
        end = proc_status(proc.pid)
        frames = sum(1 for line in arrivals.lines if line[0] == PROCESS_DEVICE) - first
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    return {
        "cpu_ms": (end["cpu_s"] - start["cpu_s"]) * 1000 / max(1, frames),
        "frames": frames,
        "rss": end["VmRSS"],
        "hwm": end["VmHWM"],
    }


def bench_spool(jpegs: list[bytes], count: int, workdir: Path, fsync: bool) -> tuple[float, float]:
    from yaguar.agent.spool import Spool

    directory = workdir / f"spool-{'fsync' if fsync else 'nofsync'}"
    spool = Spool(directory, max_bytes=2**40, fsync=fsync, seq_block=64)
    total = 0
    started = time.perf_counter()
    for i in range(count):
        payload = jpegs[i % len(jpegs)]
        spool.put(
            payload,
            device=DEVICE,
            capture_id=f"s.{i}",
            event_id=f"s{i // 3}",
            burst_index=i % 3,
            burst_size=3,
            captured_at=datetime.now(UTC),
            trigger="test",
        )
        total += len(payload)
    elapsed = time.perf_counter() - started
    shutil.rmtree(directory)
    return count / elapsed, total / elapsed / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts: under a minute")
    parser.add_argument("--triggers", type=int, help="PIR edges to time (default 150, quick 30)")
    parser.add_argument("--spool-frames", type=int, help="frames per spool run (default 400, quick 100)")
    parser.add_argument("--_station-double", nargs=2, metavar=("HOST", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._station_double:
        station_double_main(args._station_double[0], int(args._station_double[1]))
        return 0
    data = shared_data_dir()
    if data is None:
        print("shared data (../shared/data) not found: nothing to replay", file=sys.stderr)
        return 1
    images = data / "images"
    triggers = args.triggers or (30 if args.quick else 150)
    spool_frames = args.spool_frames or (100 if args.quick else 400)
    jpegs = [p.read_bytes() for p in sorted(images.rglob("*")) if p.suffix.lower() in (".jpg", ".jpeg")]
    jpegs = [j for j in jpegs if j]
    baseline_rss = rss_mb()

    with tempfile.TemporaryDirectory(prefix="yaguar-bench-agent-", dir="/var/tmp") as tmp:
        workdir = Path(tmp)
        with Broker(workdir / "broker") as broker:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--_station-double", broker.host, str(broker.port)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None and proc.stdin is not None
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            if not ready or proc.stdout.readline().strip() != "ready":
                raise RuntimeError("the subscriber process did not start")
            arrivals = Arrivals(proc)
            try:
                ref_lat, ref_cpu = bench_reference(broker, arrivals, jpegs, triggers)
                lat, to_spool, cpu_ms, frames = bench_agent(broker, arrivals, images, workdir, triggers)
                alone = bench_agent_process(broker, arrivals, images, workdir, 8 if args.quick else 30)
            finally:
                proc.stdin.close()
                proc.wait(10)
        peak = peak_rss_mb()
        fs_rate, fs_mb = bench_spool(jpegs, spool_frames, workdir, fsync=True)
        nofs_rate, nofs_mb = bench_spool(jpegs, spool_frames, workdir, fsync=False)

    mean_kb = statistics.mean(len(j) for j in jpegs) / 1024
    ms = 1000
    p50, ref50 = statistics.median(lat), statistics.median(ref_lat)
    lines = [
        "",
        f"Agent benchmark: {triggers} PIR edges, {len(jpegs)} real JPEGs (mean {mean_kb:.0f} KiB), "
        f"{os.cpu_count()} CPUs",
        "PIR edge -> first frame at the subscriber (target p50 < 150 ms):",
        f"  p50 {p50 * ms:6.1f} ms   p99 {percentile(lat, 99) * ms:6.1f} ms   max {max(lat) * ms:6.1f} ms",
        f"  of which edge -> spooled (fsync'd): p50 {statistics.median(to_spool) * ms:6.1f} ms   "
        f"p99 {percentile(to_spool, 99) * ms:6.1f} ms",
        f"  reference, bare paho publish -> subscriber: p50 {ref50 * ms:6.1f} ms   "
        f"p99 {percentile(ref_lat, 99) * ms:6.1f} ms",
        f"  ratio agent/reference (p50): {p50 / ref50:.1f}x",
        "Agent CPU per frame:",
        f"  yaguar-agent process (timelapse, {alone['frames']:.0f} frames): {alone['cpu_ms']:.1f} ms",
        f"  in-process during the PIR run ({frames} frames, harness included): {cpu_ms:.1f} ms",
        f"  reference, bare paho publish: {ref_cpu:.1f} ms; ratio agent process/reference "
        f"{alone['cpu_ms'] / ref_cpu:.1f}x",
        "Resident memory (target < 80 MB):",
        f"  yaguar-agent process: {alone['rss']:.1f} MB now, {alone['hwm']:.1f} MB peak",
        f"  reference, this harness's interpreter after its imports: {baseline_rss:.1f} MB "
        f"(ratio agent peak/reference {alone['hwm'] / baseline_rss:.2f}); harness with the agent in it: "
        f"{peak:.1f} MB peak",
        f"Spool writes, {spool_frames} real JPEGs each way:",
        f"  fsync    {fs_rate:7.1f} frames/s ({fs_mb:6.1f} MB/s)",
        f"  no fsync {nofs_rate:7.1f} frames/s ({nofs_mb:6.1f} MB/s)",
        f"  ratio no-fsync/fsync {nofs_rate / fs_rate:.1f}x",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
