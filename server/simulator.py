"""``yaguar-sim``: a field of simulated agents that replay a folder of real JPEGs as PIR bursts through
the real wire protocol, for the demo, the benchmarks and the tests.

Each simulated agent keeps every frame until the station's application ``Ack`` arrives, and can send
what is still unacknowledged again (same seq), as the real agent's spool does.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from yaguar.logs import setup_logging
from yaguar.paths import shared_data_dir
from yaguar.protocol import Ack, Kind, Status, build_meta, to_properties, topic

log = logging.getLogger(__name__)
COLOMBIA = timezone(timedelta(hours=-5))


@dataclass
class Pending:
    """A frame published and not yet acknowledged: when it went out (for the ack latency)."""

    first_sent: float


def load_jpegs(folder: Path, limit: int | None = None) -> list[bytes]:
    """Readable, non-empty JPEG files of a folder (recursively), sorted by name."""
    files = sorted(
        p for p in Path(folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg") and p.stat().st_size
    )
    if not files:
        raise FileNotFoundError(f"no JPEG files in {folder}")
    return [p.read_bytes() for p in files[:limit]]


class SimAgent:
    """One simulated camera: an MQTT v5 client publishing bursts and collecting Acks."""

    def __init__(
        self,
        device_id: str,
        host: str,
        port: int,
        jpegs: list[bytes],
        burst_size: int = 3,
        username: str | None = None,
        password: str | None = None,
        start_seq: int = 0,
    ) -> None:
        self.device_id = device_id
        self.jpegs = jpegs
        self.burst_size = burst_size
        self.next_seq = start_seq
        self.pending: dict[int, Pending] = {}
        self.acks: dict[int, str] = {}
        self.ack_count = 0
        self.latencies: list[float] = []
        self._lock = threading.Lock()
        self._acked = threading.Condition(self._lock)
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"sim-{device_id}",
            protocol=mqtt.MQTTv5,
        )
        self.client.max_inflight_messages_set(50)
        self.client.max_queued_messages_set(0)
        if username:
            self.client.username_pw_set(username, password)
        offline = Status(device=device_id, state="offline")
        self.client.will_set(topic(device_id, Kind.STATUS), offline.to_json(), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.host, self.port = host, port

    def connect(self, timeout: float = 10.0) -> SimAgent:
        self.connected = threading.Event()
        self.client.connect_async(self.host, self.port, keepalive=60, clean_start=True)
        self.client.loop_start()
        if not self.connected.wait(timeout):
            raise TimeoutError(f"{self.device_id}: could not connect to {self.host}:{self.port}")
        return self

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("%s: broker refused the connection: %s", self.device_id, reason)
            return
        client.subscribe(topic(self.device_id, Kind.ACK), qos=1)
        online = Status(device=self.device_id, state="online", at=datetime.now(UTC), agent_version="sim")
        client.publish(topic(self.device_id, Kind.STATUS), online.to_json(), qos=1, retain=True)
        self.connected.set()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            ack = Ack.model_validate_json(message.payload)
        except ValidationError:
            log.warning("%s: ignored a malformed ack", self.device_id)
            return
        with self._acked:
            pending = self.pending.pop(ack.seq, None)
            if pending is not None:
                self.latencies.append(time.monotonic() - pending.first_sent)
            self.acks[ack.seq] = ack.status
            self.ack_count += 1
            self._acked.notify_all()

    def frame(
        self, payload: bytes, event_id: str, index: int, size: int, trigger: str = "pir"
    ) -> tuple[int, Properties]:
        """Build the next frame's properties (a new seq)."""
        seq = self.next_seq
        self.next_seq += 1
        meta = build_meta(
            payload,
            device=self.device_id,
            seq=seq,
            capture_id=f"{event_id}-{index}",
            event_id=event_id,
            burst_index=index,
            burst_size=size,
            captured_at=datetime.now(COLOMBIA),
            trigger=trigger,
        )
        return seq, to_properties(meta)

    def publish_burst(self, trigger: str = "pir") -> list[int]:
        event_id = uuid.uuid4().hex[:16]
        seqs = []
        for index in range(self.burst_size):
            payload = self.jpegs[(self.next_seq + index) % len(self.jpegs)]
            seq, props = self.frame(payload, event_id, index, self.burst_size, trigger)
            self.publish(seq, payload, props)
            seqs.append(seq)
        return seqs

    def publish(self, seq: int, payload: bytes, props: Properties) -> None:
        with self._lock:
            self.pending[seq] = Pending(time.monotonic())
        self.client.publish(topic(self.device_id, Kind.FRAME), payload, qos=1, properties=props)

    def wait_acked(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._acked:
            while self.pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._acked.wait(remaining)
        return True


class FieldCamera:
    """A simulated camera that runs the real agent's crash-safe spool and publisher (``yaguar.agent``):
    what the demo and ``yaguar-sim`` use, so they exercise the code that runs on the Pis."""

    def __init__(
        self, device_id: str, address: str, jpegs: list[bytes], spool_dir: Path, burst_size: int = 3
    ) -> None:
        from yaguar.agent.publisher import Publisher
        from yaguar.agent.spool import Spool

        self.device_id = device_id
        self.jpegs = jpegs
        self.burst_size = burst_size
        self.captured = 0
        self.spool = Spool(spool_dir)
        self.publisher = Publisher(self.spool, address, device_id)

    def start(self) -> FieldCamera:
        self.publisher.start()
        return self

    def stop(self) -> None:
        self.publisher.stop()

    def burst(self, trigger: str = "pir") -> None:
        event_id = uuid.uuid4().hex[:16]
        for index in range(self.burst_size):
            self.spool.put(
                self.jpegs[self.captured % len(self.jpegs)],
                device=self.device_id,
                capture_id=f"{event_id}-{index}",
                event_id=event_id,
                burst_index=index,
                burst_size=self.burst_size,
                captured_at=datetime.now(COLOMBIA),
                trigger=trigger,
            )
            self.captured += 1

    def wait_drained(self, timeout: float) -> bool:
        return self.publisher.wait_drained(timeout)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run_field(args: argparse.Namespace) -> int:
    """Run N cameras on the real agent code; report how long the station took to acknowledge it all."""
    import tempfile

    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    folder = Path(args.folder) if args.folder else (shared_data_dir() or Path(".")) / "images" / "camera-trap"
    jpegs = load_jpegs(folder)
    with tempfile.TemporaryDirectory(prefix="yaguar-sim-") as spools:
        cameras = [
            FieldCamera(
                f"{args.prefix}-{i + 1:02d}", args.broker, jpegs, Path(spools) / str(i), args.burst_size
            ).start()
            for i in range(args.agents)
        ]
        total = args.agents * args.bursts * args.burst_size
        console.print(f"{args.agents} cameras will send {total} frames from {folder}")
        start = time.monotonic()
        with Progress(console=console) as progress:
            task = progress.add_task("frames acknowledged by the station", total=total)

            def update() -> None:
                waiting = sum(camera.spool.depth for camera in cameras)
                progress.update(task, completed=sum(c.captured for c in cameras) - waiting)

            for _ in range(args.bursts):
                for camera in cameras:
                    camera.burst()
                update()
                time.sleep(random.uniform(0, 2 * args.interval) if args.interval else 0)
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline and any(camera.spool.depth for camera in cameras):
                update()
                time.sleep(0.2)
            update()
        elapsed = time.monotonic() - start
        waiting = sum(camera.spool.depth for camera in cameras)
        for camera in cameras:
            camera.stop()
    console.print(
        f"{total - waiting} of {total} frames acknowledged by the station in {elapsed:.1f} s; "
        f"{waiting} still waiting in the cameras' spools"
    )
    return 1 if waiting else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="yaguar-sim", description="Simulated cameras replaying real images")
    parser.add_argument("--broker", default="127.0.0.1:1883", help="host:port of the MQTT broker")
    parser.add_argument("--agents", type=int, default=5, help="number of simulated cameras")
    parser.add_argument("--bursts", type=int, default=10, help="bursts per camera")
    parser.add_argument("--burst-size", type=int, default=3, help="frames per burst")
    parser.add_argument(
        "--interval", type=float, default=2.0, help="mean seconds between bursts (0: flat out)"
    )
    parser.add_argument("--folder", help="folder of JPEGs to replay (default: the shared camera-trap images)")
    parser.add_argument("--prefix", default="sim-cam", help="device id prefix")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for the last acks")
    args = parser.parse_args(argv)
    setup_logging("WARNING")
    try:
        return run_field(args)
    except (FileNotFoundError, TimeoutError) as exc:
        print(f"yaguar-sim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
