"""Soak and load: 20 real agents (``yaguar.agent`` spool + publisher) send bursts of real JPEGs at random
intervals through a fault-injecting TCP proxy to a real Mosquitto and the real station process; in the
middle the station is down for a 30-minute outage; faults are injected throughout (connection resets in
mid-frame, stalls, WiFi-speed throttling, link cuts, a broker kill -9, a station kill -9). At the end
every frame each agent captured is checked against the database.

Time is compressed: ``--time-scale 60`` plays the 30-minute outage in 30 s (the agents' clocks and
ack timeouts are not scaled; the outage is). The full-length run is ``--time-scale 1 --duration 3600``.

Prints: frames captured / stored / lost / duplicated, broker messages dropped (from $SYS), peak spool
depth, p50/p99 capture-to-stored latency, and the reference: the same figures for the same field with
no faults, measured in the same run (``--no-reference`` skips it).

    .venv/bin/python bench/soak.py --quick            # ~2 minutes on 2 cores
    .venv/bin/python bench/soak.py                    # 20 agents, 30-min outage at 1:60 + reference, ~9 min
    .venv/bin/python bench/soak.py --time-scale 1 --duration 3600   # the full-length run (~1 h)
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.broker import Broker
from tests.support.field import SpoolAgent, StationProcess, audit, captured_by
from tests.support.small_jpegs import small_real_jpegs
from tests.support.tcp_proxy import TcpProxy
from yaguar.paths import shared_data_dir
from yaguar.server.simulator import percentile

SYS_TOPICS = ("$SYS/broker/publish/messages/dropped", "$SYS/broker/store/messages/count")


@dataclass
class SysWatch:
    """Follows Mosquitto's $SYS counters; they restart from 0 when the broker restarts, so the last value
    of each broker life is added up."""

    broker: Broker
    values: dict[str, int] = field(default_factory=dict)
    finished_lives: dict[str, int] = field(default_factory=dict)
    peak_stored: int = 0

    def start(self) -> SysWatch:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="soak-sys", protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: [c.subscribe(t, qos=0) for t in SYS_TOPICS]
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async(self.broker.host, self.broker.port)
        self.client.loop_start()
        return self

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        value = int(float(message.payload.decode() or 0))
        if message.topic.endswith("store/messages/count"):
            self.peak_stored = max(self.peak_stored, value)
        self.values[message.topic] = value

    def broker_restarted(self) -> None:
        for topic, value in self.values.items():
            self.finished_lives[topic] = self.finished_lives.get(topic, 0) + value
        self.values = {}

    def dropped(self) -> int:
        topic = SYS_TOPICS[0]
        return self.finished_lives.get(topic, 0) + self.values.get(topic, 0)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # stored as naive UTC


def latencies(db: Path, outage: tuple[datetime, datetime] | None) -> tuple[list[float], list[float]]:
    """Capture-to-stored seconds of every frame: (all, those captured outside the outage)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT captured_at, received_at FROM media").fetchall()
    every, normal = [], []
    for captured, received in rows:
        c, r = (_aware(datetime.fromisoformat(v)) for v in (captured, received))
        every.append((r - c).total_seconds())
        if outage is None or not (outage[0] <= c <= outage[1]):
            normal.append((r - c).total_seconds())
    return every, normal


def run_field(args: argparse.Namespace, workdir: Path, faults: bool) -> dict[str, object]:
    rng = random.Random(args.seed)
    jpegs = small_real_jpegs(args.images, count=48, width=args.width)
    broker = Broker(workdir / "broker", extra="sys_interval 1\n").start()
    sys_watch = SysWatch(broker).start()
    station = StationProcess(workdir / "station", broker).start()
    proxy = TcpProxy((broker.host, broker.port)).start()
    agents = [
        SpoolAgent(
            f"soak-{i:02d}", "127.0.0.1", proxy.port, workdir / "spools" / f"{i:02d}",
            jpegs[i:] + jpegs[:i], burst_size=3, window=4, ack_timeout_s=20,
        ).start()
        for i in range(args.agents)
    ]  # fmt: skip
    outage_s = args.outage_minutes * 60 / args.time_scale
    outage_at = args.duration / 2 - outage_s / 2
    stop = threading.Event()
    events: list[str] = []
    peak = {"depth": 0}

    def cameras() -> None:
        due = [time.monotonic() + rng.expovariate(1 / args.burst_every) for _ in agents]
        while not stop.is_set():
            now = time.monotonic()
            for i, agent in enumerate(agents):
                if now >= due[i]:
                    agent.capture_burst()
                    due[i] = now + rng.expovariate(1 / args.burst_every)
            peak["depth"] = max(peak["depth"], sum(a.spool.depth for a in agents))
            stop.wait(0.05)

    started = time.monotonic()
    camera_thread = threading.Thread(target=cameras, daemon=True)
    camera_thread.start()
    outage: tuple[datetime, datetime] | None = None
    broker_killed = station_killed = False
    try:
        while time.monotonic() - started < args.duration:
            t = time.monotonic() - started
            if faults and outage is None and t >= outage_at:
                begin = datetime.now().astimezone()
                station.kill()
                events.append(f"station down {outage_s:.0f} s (= {args.outage_minutes} min simulated)")
                time.sleep(outage_s)
                station.start()
                outage = (begin, datetime.now().astimezone())
                continue
            if faults:
                fault = rng.choice(["reset", "stall", "throttle", "cut", "none", "none"])
                if fault == "reset":
                    proxy.reset_after(rng.randint(2_000, 40_000))
                elif fault == "stall":
                    proxy.stall(rng.uniform(1, 4))
                elif fault == "throttle":
                    proxy.throttle(rng.choice([25_000, 60_000, 150_000]))
                elif fault == "cut":
                    proxy.cut()
                events.append(fault)
                if not broker_killed and t > args.duration * 0.2:
                    broker.kill()
                    sys_watch.broker_restarted()
                    time.sleep(1)
                    broker.start()
                    broker_killed = True
                    events.append("broker kill -9")
                if not station_killed and t > args.duration * 0.75:
                    station.kill()
                    time.sleep(0.5)
                    station.start()
                    station_killed = True
                    events.append("station kill -9")
            time.sleep(rng.uniform(2, 5))
            proxy.restore()
        stop.set()
        camera_thread.join()
        proxy.restore()
        deadline = time.monotonic() + args.drain_timeout
        while any(a.pending for a in agents) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)  # one more $SYS interval
        result = audit(station, captured_by(agents), agents)
        every, normal = latencies(station.db, outage)
    finally:
        for agent in agents:
            agent.close()
        proxy.stop()
        station.stop()
        sys_watch.stop()
        broker.stop()
    return {
        "audit": result,
        "dropped": sys_watch.dropped(),
        "peak_broker_store": sys_watch.peak_stored,
        "peak_spool": peak["depth"],
        "peak_spool_one": max(a.peak_depth for a in agents),
        "p50": percentile(every, 50),
        "p99": percentile(every, 99),
        "p99_normal": percentile(normal, 99),
        "faults": events,
        "resets": proxy.resets,
        "cuts": proxy.cuts,
        "wall_s": time.monotonic() - started,
    }


def report(name: str, r: dict[str, object]) -> None:
    a = r["audit"]
    print(f"--- {name} ({r['wall_s']:.0f} s)")
    print(
        f"frames captured {a.captured} / stored {a.stored} / lost {a.lost} / duplicated {a.duplicated}"
        f" / corrupt {a.corrupt} / still in spools {a.unacknowledged}"
    )
    print(
        "alerts due / sent / duplicated: not exercised (inference is off in the soak; see docs/operations.md)"
    )
    print(
        f"broker messages dropped ($SYS): {r['dropped']}; peak messages held by the broker: {r['peak_broker_store']}"
    )
    print(f"peak spool depth: {r['peak_spool']} frames over all agents, {r['peak_spool_one']} in one agent")
    print(
        f"capture-to-stored latency: p50 {r['p50']:.2f} s, p99 {r['p99']:.2f} s; "
        f"p99 of frames captured outside the outage {r['p99_normal']:.2f} s"
    )
    if r["faults"]:
        counts = {f: r["faults"].count(f) for f in sorted(set(r["faults"]))}
        print(f"faults: {counts}; proxy resets done {r['resets']}, cuts {r['cuts']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--duration", type=float, default=240, help="seconds of field time (wall clock)")
    parser.add_argument("--outage-minutes", type=float, default=30, help="station outage, simulated minutes")
    parser.add_argument("--time-scale", type=float, default=60, help="simulated seconds per real second")
    parser.add_argument(
        "--burst-every", type=float, default=8, help="mean seconds between one agent's bursts"
    )
    parser.add_argument("--width", type=int, default=320, help="frame width (real photos, scaled down)")
    parser.add_argument("--drain-timeout", type=float, default=180)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--quick", action="store_true", help="120 s of field time, reference skipped")
    parser.add_argument("--no-reference", action="store_true", help="skip the no-fault reference run")
    args = parser.parse_args(argv)
    data = shared_data_dir()
    if data is None:
        print("soak: the shared data folder (real images) is missing", file=sys.stderr)
        return 2
    args.images = data / "images"
    if args.quick:
        args.duration, args.no_reference = 120, True
    with tempfile.TemporaryDirectory(prefix="yaguar-soak-") as tmp:
        faulty = run_field(args, Path(tmp) / "faults", faults=True)
        report("with faults", faulty)
        if not args.no_reference:
            clean = run_field(args, Path(tmp) / "clean", faults=False)
            report("reference: same field, no faults", clean)
            ratio = faulty["p99_normal"] / clean["p99"] if clean["p99"] else float("nan")
            print(f"ratio p99 (faults, outside the outage) / p99 (no faults): {ratio:.2f}")
    a = faulty["audit"]
    return 0 if (a.lost, a.duplicated, a.corrupt, a.unacknowledged) == (0, 0, 0, 0) else 1


if __name__ == "__main__":
    sys.exit(main())
