"""The link between cameras and station misbehaves: cut, stalled, slowed to WiFi speed, reset in the
middle of a frame, lossy and slow (tc netem in a network namespace); and the agents themselves are
SIGKILLed at random points. Every frame a camera captured reaches the database exactly once.

The agents are the real ``yaguar.agent`` spool and publisher; the station is the real station process.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import Broker
from tests.support.field import SpoolAgent, StationProcess, audit, captured_by, wait_drained
from tests.support.small_jpegs import small_real_jpegs
from tests.support.tcp_proxy import TcpProxy
from tests.support.tmpfs import tiny_tmpfs

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cut_stall_throttle_and_reset_mid_frame(tmp_path: Path, images: Path) -> None:
    jpegs = small_real_jpegs(images, count=12, width=480)  # ~20-40 kB: several TCP segments per frame
    rng = random.Random(8)
    with Broker(tmp_path / "broker") as broker:
        station = StationProcess(tmp_path / "station", broker).start()
        proxy = TcpProxy((broker.host, broker.port)).start()
        agents = [
            SpoolAgent(f"cam-{i}", "127.0.0.1", proxy.port, tmp_path / f"spool-{i}", jpegs, 3, window=4,
                       ack_timeout_s=4).start()
            for i in range(3)
        ]  # fmt: skip
        faults: list[str] = []
        try:
            for round_ in range(12):
                for agent in agents:
                    agent.capture_burst()
                fault = ["reset", "stall", "throttle", "cut", "none"][round_ % 5]
                faults.append(fault)
                if fault == "reset":
                    proxy.reset_after(rng.randint(5_000, 30_000))  # inside the next frame or two
                elif fault == "stall":
                    proxy.stall(2.0)
                elif fault == "throttle":
                    proxy.throttle(25_000)  # ~200 kbit/s, a weak 2.4 GHz link
                elif fault == "cut":
                    proxy.cut()
                time.sleep(1.2)
                proxy.restore()
            drained = wait_drained(agents, timeout=60)
            result = audit(station, captured_by(agents), agents)
        finally:
            for agent in agents:
                agent.close()
            proxy.stop()
            station.stop()
    print(f"\nproxy faults {faults}: {proxy.resets} resets, {proxy.cuts} cuts; {result.line()}")
    assert proxy.resets >= 1 and proxy.cuts >= 1
    assert drained and result.captured == 12 * 3 * 3
    assert (result.lost, result.duplicated, result.corrupt) == (0, 0, 0), result.line()


def run_child(args: list[str], log: Path, netns: str | None = None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.support.agent_child", *args]
    if netns:
        command = ["ip", "netns", "exec", netns, *command]
    return subprocess.Popen(
        command, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def logged(log: Path) -> dict[int, str]:
    frames = {}
    for line in log.read_text().splitlines():
        seq, sha = line.split()
        frames[int(seq)] = sha
    return frames


@pytest.mark.slow
def test_agents_sigkilled_at_random_points(tmp_path: Path, images: Path) -> None:
    rng = random.Random(81)
    with Broker(tmp_path / "broker") as broker:
        station = StationProcess(tmp_path / "station", broker).start()
        devices = [f"cam-k{i}" for i in range(3)]
        args = {
            d: ["--device", d, "--host", broker.host, "--port", str(broker.port), "--spool",
                str(tmp_path / d), "--log", str(tmp_path / f"{d}.log"), "--images", str(images),
                "--bursts", "15", "--interval", "0.15"]
            for d in devices
        }  # fmt: skip
        procs = {d: run_child(args[d], tmp_path / f"{d}.out") for d in devices}
        kills = 0
        try:
            for _ in range(4):  # SIGKILL a random agent at a random moment, restart it on its spool
                time.sleep(rng.uniform(0.8, 2.0))
                victim = rng.choice(devices)
                os.killpg(procs[victim].pid, signal.SIGKILL)
                procs[victim].wait()
                kills += 1
                procs[victim] = run_child(args[victim], tmp_path / f"{victim}.out")
            codes = {d: p.wait(120) for d, p in procs.items()}
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.5)
            station.stop()
    captured = {d: logged(tmp_path / f"{d}.log") for d in devices}

    class Done:
        pending = 0

    result = audit(station, captured, [Done()])
    with sqlite3.connect(station.db) as conn:
        seqs = conn.execute("SELECT device_id, seq FROM media").fetchall()
    print(f"\n{kills} agent SIGKILLs; {result.line()}; {len(seqs)} rows")
    assert codes == dict.fromkeys(devices, 0), f"agents did not drain: {codes}"
    assert result.captured >= 3 * 15 * 3
    assert (result.lost, result.duplicated, result.corrupt) == (0, 0, 0), result.line()


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    with tiny_tmpfs(tmp_path / "tiny", "768k") as mount:
        yield mount


@pytest.mark.slow
def test_spool_on_a_full_filesystem_evicts_oldest_then_delivers_the_rest(
    tiny_fs: Path, tmp_path: Path, images: Path
) -> None:
    """The station is down; the spool's byte cap (64 MiB) is far above the 768 kB disk, so the disk fills
    first (ENOSPC): the spool drops its oldest frames (policy drop_oldest), counts them, and once the
    station is back every frame still spooled is stored exactly once."""
    jpegs = small_real_jpegs(images, count=12, width=480)
    with Broker(tmp_path / "broker") as broker:
        agent = SpoolAgent(
            "cam-full", broker.host, broker.port, tiny_fs / "spool", jpegs, 3, max_bytes=64 * 1024 * 1024
        )  # not started yet: the station and the link are "down", frames pile up on the Pi
        for _ in range(20):
            agent.capture_burst()
        remaining = {frame.seq for frame in agent.spool.send_order()}
        evicted = agent.spool.metrics.total("yaguar_agent_frames_evicted")
        assert len(agent.captured) == 60
        assert evicted > 0 and remaining, "the tiny disk should have filled"
        assert len(remaining) + evicted == 60, "every frame is either spooled or counted as evicted"
        assert max(agent.captured) in remaining, "drop_oldest keeps the newest frames"
        station = StationProcess(tmp_path / "station", broker).start()
        agent.start()
        try:
            drained = wait_drained([agent], timeout=40)
        finally:
            agent.close()
            station.stop()
    kept = {"cam-full": {seq: agent.captured[seq] for seq in remaining}}
    result = audit(station, kept, [agent])
    print(f"\ntiny spool: 60 captured, {evicted} evicted by policy, {len(remaining)} kept; {result.line()}")
    assert drained and (result.lost, result.duplicated, result.corrupt) == (0, 0, 0)
    assert result.stored == len(remaining)


NETNS = f"yg-faults-{os.getpid()}"


@pytest.fixture
def netem_link():
    """A network namespace for the agents, joined to ours by a veth pair with 5 % loss and 40 ms
    (+-10 ms) delay each way where the kernel has sch_netem (without it the link is still there, and
    the test flaps it): (namespace, host interface, broker address, agent address, netem on)."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("tc"):
        pytest.skip("network namespaces need root, iproute2 (ip) and tc")
    host_if, ns_if = f"ygh{os.getpid() % 100000}", f"ygn{os.getpid() % 100000}"
    octet = 16 + os.getpid() % 200
    broker_ip, agent_ip = f"10.231.{octet}.1", f"10.231.{octet}.2"
    steps = [
        ["ip", "netns", "add", NETNS],
        ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
        ["ip", "link", "set", ns_if, "netns", NETNS],
        ["ip", "addr", "add", f"{broker_ip}/30", "dev", host_if],
        ["ip", "link", "set", host_if, "up"],
        ["ip", "netns", "exec", NETNS, "ip", "addr", "add", f"{agent_ip}/30", "dev", ns_if],
        ["ip", "netns", "exec", NETNS, "ip", "link", "set", ns_if, "up"],
        ["ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up"],
    ]
    netem = [
        ["tc", "qdisc", "add", "dev", host_if, "root", "netem", "loss", "5%", "delay", "40ms", "10ms"],
        ["ip", "netns", "exec", NETNS, "tc", "qdisc", "add", "dev", ns_if, "root", "netem", "loss", "5%",
         "delay", "40ms", "10ms"],
    ]  # fmt: skip
    try:
        for step in steps:
            done = subprocess.run(step, capture_output=True, check=False)
            if done.returncode != 0:
                pytest.skip(f"{' '.join(step[:4])}... refused: {done.stderr.decode().strip()[:160]}")
        netem_on = all(
            subprocess.run(step, capture_output=True, check=False).returncode == 0 for step in netem
        )
        yield NETNS, host_if, broker_ip, agent_ip, netem_on
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)


@pytest.mark.slow
def test_agents_in_another_namespace_behind_a_lossy_flapping_link(
    netem_link, tmp_path: Path, images: Path
) -> None:
    netns, host_if, broker_ip, _agent_ip, netem_on = netem_link
    broker = Broker(tmp_path / "broker", extra="")
    broker.host = broker_ip
    broker.extra = f"listener {broker.port} {broker_ip}\nallow_anonymous true\n"
    with broker:
        station = StationProcess(tmp_path / "station", broker).start()
        devices = ["cam-n0", "cam-n1"]
        procs = {
            d: run_child(
                ["--device", d, "--host", broker_ip, "--port", str(broker.port), "--spool", str(tmp_path / d),
                 "--log", str(tmp_path / f"{d}.log"), "--images", str(images), "--bursts", "8",
                 "--interval", "0.2", "--ack-timeout", "5"],
                tmp_path / f"{d}.out",
                netns=netns,
            )
            for d in devices
        }  # fmt: skip
        try:
            for _ in range(3):  # the radio drops: the interface goes down for 1.5 s
                time.sleep(1.0)
                subprocess.run(["ip", "link", "set", host_if, "down"], check=True)
                time.sleep(1.5)
                subprocess.run(["ip", "link", "set", host_if, "up"], check=True)
            codes = {d: p.wait(120) for d, p in procs.items()}
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
            station.stop()

    class Done:
        pending = 0

    result = audit(station, {d: logged(tmp_path / f"{d}.log") for d in devices}, [Done()])
    link = "netem 5% loss, 40+-10 ms each way" if netem_on else "no sch_netem in this kernel: plain veth"
    print(f"\nnamespace link ({link}), 3 link flaps: {result.line()}")
    assert codes == dict.fromkeys(devices, 0), (tmp_path / "cam-n0.out").read_text()[-2000:]
    assert result.captured == 2 * 8 * 3
    assert (result.lost, result.duplicated, result.corrupt) == (0, 0, 0), result.line()
