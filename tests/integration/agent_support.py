"""Test helpers for the agent: a station double on the real broker, and agent configs for tests.

The double plays the station's side of the contract: it validates every frame with the protocol's own
validator, records what really crossed the socket, and answers with ``Ack`` messages (or not, or
``rejected``), so the agent's behaviour is checked against the contract, not against itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.support.broker import Broker
from yaguar.agent.config import AgentConfig, parse_config
from yaguar.protocol import topics
from yaguar.protocol.errors import ProtocolError
from yaguar.protocol.messages import Ack, FrameMeta, Heartbeat, Status
from yaguar.protocol.topics import Kind
from yaguar.protocol.validate import parse_json_message, validate_frame


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class StationDouble:
    """Subscribes to one device's frames, heartbeats and status; answers each valid frame with an Ack.

    ``answer(meta) -> "stored" | "rejected:<reason>" | None`` decides the reply (None: stay silent).
    A persistent session, so frames published while the broker restarts wait for it.
    """

    def __init__(
        self,
        broker: Broker,
        device_id: str = "cam-01",
        answer: Callable[[FrameMeta], str | None] | None = None,
        client_id: str = "station-double",
        tls: tuple[Path, Path | None, Path | None] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.broker = broker
        self.device_id = device_id
        self.answer = answer or (lambda meta: "stored")
        self.lock = threading.Lock()
        self.arrivals: list[int] = []  # seq of every frame message, in arrival order (repeats included)
        self.stored: dict[int, tuple[FrameMeta, bytes]] = {}
        self.rejected: dict[int, str] = {}
        self.statuses: list[Status] = []
        self.heartbeats: list[Heartbeat] = []
        self.conflicts: list[int] = []  # seqs that came back with other bytes: a reused seq
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        if tls is not None:  # (ca, certificate, key); no certificate: password log-in over TLS
            ca, cert, key = tls
            self.client.tls_set(
                ca_certs=str(ca), certfile=str(cert) if cert else None, keyfile=str(key) if key else None
            )
        if credentials is not None:
            self.client.username_pw_set(*credentials)
        self.subscribed = threading.Event()

    def start(self) -> StationDouble:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect(self.broker.host, self.broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        assert self.subscribed.wait(10), "station double did not connect"
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> StationDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_connect(self, client: mqtt.Client, *_args: Any) -> None:
        for kind in (Kind.FRAME, Kind.HEARTBEAT, Kind.STATUS):
            client.subscribe(topics.topic(self.device_id, kind), qos=1)
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        _, kind = topics.parse(message.topic)
        if kind is Kind.STATUS:
            with self.lock:
                self.statuses.append(parse_json_message(Status, message.topic, message.payload))
            return
        if kind is Kind.HEARTBEAT:
            with self.lock:
                self.heartbeats.append(parse_json_message(Heartbeat, message.topic, message.payload))
            return
        payload = bytes(message.payload)
        try:
            frame = validate_frame(message.topic, payload, message.properties)
        except ProtocolError as exc:
            seq = self._seq_of(message.properties)
            if seq is not None:
                self.rejected[seq] = exc.reason
                self.ack(Ack(seq=seq, status="rejected", reason=exc.reason))
            return
        meta = frame.meta
        with self.lock:
            self.arrivals.append(meta.seq)
        decision = self.answer(meta)
        if decision is None:
            return
        if decision.startswith("rejected"):
            reason = decision.partition(":")[2] or "test"
            self.rejected[meta.seq] = reason
            self.ack(Ack(seq=meta.seq, status="rejected", reason=reason))
            return
        with self.lock:
            status = "duplicate" if meta.seq in self.stored else "stored"
            if status == "duplicate":
                assert self.stored[meta.seq][0].sha256 == meta.sha256, (
                    f"seq {meta.seq} reused for other bytes"
                )
            else:
                self.stored[meta.seq] = (meta, payload)
        self.ack(Ack(seq=meta.seq, status=status))

    @staticmethod
    def _seq_of(props: Properties | None) -> int | None:
        for key, value in getattr(props, "UserProperty", None) or []:
            if key == "seq" and value.isdigit():
                return int(value)
        return None

    def ack(self, ack: Ack) -> None:
        self.client.publish(topics.topic(self.device_id, Kind.ACK), ack.to_json(), qos=1)

    def publish(self, kind: Kind, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topics.topic(self.device_id, kind), payload, qos=1, retain=retain)
        info.wait_for_publish(5)

    def first_arrivals(self) -> list[int]:
        seen: set[int] = set()
        order = []
        with self.lock:
            for seq in self.arrivals:
                if seq not in seen:
                    seen.add(seq)
                    order.append(seq)
        return order


def agent_config(
    tmp_path: Path, broker: Broker | None, images: Path | str, device_id: str = "cam-01", **sections: Any
) -> AgentConfig:
    """An agent config for tests: replay camera, mock GPIO, fast reconnects; ``sections`` override."""
    data: dict[str, Any] = {
        "device_id": device_id,
        "pin_factory": "mock",
        "camera": {"type": "replay", "folder": str(images)},
        "mqtt": {
            "host": broker.host if broker else "127.0.0.1",
            "port": broker.port if broker else 1,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            "ack_timeout_s": 5,
        },
        "capture": {"burst_size": 3, "burst_interval_s": 0.05},
        "pir": {"enabled": False},
        "spool": {"dir": str(tmp_path / "spool"), "fsync": True},
        "health": {"heartbeat_interval_s": 60},
    }
    for section, values in sections.items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section] = {**data[section], **values}
        else:
            data[section] = values
    return parse_config(data, environ={})
