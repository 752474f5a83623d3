"""The paho receive-path fixes decode frames exactly as paho does, without copying the payload again and
again."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime

import pytest
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from yaguar.protocol import build_meta, paho_speedup, to_properties
from yaguar.protocol.paho_speedup import _original_unpack


@pytest.fixture(autouse=True)
def _reinstall():
    yield
    paho_speedup.install()


def publish_body(
    payload: bytes, topic: bytes = b"yaguar/v1/cam-1/frame", props: bytes | None = None
) -> bytes:
    """The bytes after a PUBLISH fixed header: topic, packet id, properties, payload."""
    if props is None:
        meta = build_meta(
            payload, device="cam-1", seq=42, capture_id="c", event_id="e", burst_index=0, burst_size=3,
            captured_at=datetime(2026, 11, 26, tzinfo=UTC), trigger="pir",
        )  # fmt: skip
        props = to_properties(meta).pack()
    return len(topic).to_bytes(2, "big") + topic + (7).to_bytes(2, "big") + props + payload


def decode_both(header: int, body: bytes | bytearray, protocol=MQTTProtocolVersion.MQTTv5):
    """(ours, paho's) for the same packet; an exception is returned instead of raised."""
    results = []
    for setup in (paho_speedup.install, paho_speedup.uninstall):
        setup()
        try:
            packet = _packet.decode_publish(header, body, protocol)
            # Properties has no __eq__: compare what it holds
            results.append(packet._replace(properties=packet.properties and packet.properties.json()))
        except Exception as exc:  # compared below: both must fail the same way
            results.append(exc)
    return results


def test_same_result_as_paho_and_payload_untouched() -> None:
    payload = bytes(range(256)) * 6000  # 1.5 MB
    fast, slow = decode_both(0x32, bytearray(publish_body(payload)))
    assert fast == slow  # every field: dup, qos, retain, topic, mid, properties, payload
    assert fast.payload == payload and isinstance(fast.payload, bytes)
    assert fast.mid == 7 and fast.topic == b"yaguar/v1/cam-1/frame"
    assert dict(fast.properties["UserProperty"])["seq"] == "42"
    assert fast.properties["ContentType"] == "image/jpeg"


@pytest.mark.parametrize("header", [0x30, 0x32, 0x3B, 0x34])  # qos 0, 1, 1 + dup + retain, 2
@pytest.mark.parametrize("protocol", [MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311])
def test_flags_qos_and_protocols_as_paho(header: int, protocol) -> None:
    props = b"" if protocol != MQTTProtocolVersion.MQTTv5 else None
    body = publish_body(b"jpeg bytes", props=props)
    if header & 0x06 == 0:  # qos 0 has no packet id
        body = body[: 2 + 21] + body[2 + 21 + 2 :]
    fast, slow = decode_both(header, body, protocol)
    assert fast == slow
    assert fast.payload == b"jpeg bytes"


@pytest.mark.parametrize(
    "body",
    [
        b"",  # nothing at all
        b"\x00",  # half a topic length
        b"\x00\x50abc",  # a topic longer than the packet
        (3).to_bytes(2, "big") + b"a/b",  # qos 1 without a packet id
        (3).to_bytes(2, "big") + b"a/b" + b"\x00\x01" + b"\x7f",  # properties cut short
    ],
)
def test_malformed_packets_fail_as_in_paho(body: bytes) -> None:
    fast, slow = decode_both(0x32, body)
    assert isinstance(fast, MalformedPacket), fast
    assert isinstance(slow, MalformedPacket), slow


def test_empty_topic_refused_in_mqtt_311() -> None:
    fast, slow = decode_both(0x30, b"\x00\x00payload", MQTTProtocolVersion.MQTTv311)
    assert isinstance(fast, MalformedPacket) and isinstance(slow, MalformedPacket)


def test_the_property_decoder_never_sees_the_payload(monkeypatch) -> None:
    seen: list[int] = []

    def spy(self, buffer):
        seen.append(len(buffer))
        return _original_unpack(self, buffer)

    monkeypatch.setattr(paho_speedup, "_original_unpack", spy)
    paho_speedup.install()
    _packet.decode_publish(0x32, publish_body(b"\xff" * 3_000_000), MQTTProtocolVersion.MQTTv5)
    assert len(seen) == 1
    assert seen[0] < 2000  # the properties only, not the 3 MB frame behind them


def test_properties_without_user_properties() -> None:
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "image/jpeg"
    fast, slow = decode_both(0x32, publish_body(b"payload", topic=b"a/b/c", props=props.pack()))
    assert fast == slow
    assert fast.payload == b"payload" and fast.properties["ContentType"] == "image/jpeg"


def test_receive_asks_the_socket_for_a_chunk_at_most() -> None:
    """paho passes the whole remaining length; the socket is asked for RECV_CHUNK at most, and a frame
    larger than that still arrives whole through a real client and broker (tests/integration)."""
    from paho.mqtt.client import Client

    left, right = socket.socketpair()
    client = Client(CallbackAPIVersion.VERSION2, protocol=5)
    client._sock = left
    data = b"x" * (3 * paho_speedup.RECV_CHUNK)
    sender = threading.Thread(target=right.sendall, args=(data,))
    sender.start()
    received = b""
    while len(received) < len(data):
        chunk = client._sock_recv(len(data) - len(received))
        assert 0 < len(chunk) <= paho_speedup.RECV_CHUNK
        received += chunk
    sender.join()
    assert received == data
    left.close()
    right.close()
