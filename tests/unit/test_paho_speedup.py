"""The paho receive-path fixes read and decode frames exactly as paho does, without copying the payload
again and again."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import pytest
from paho.mqtt import _packet
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from yaguar.protocol import build_meta, paho_speedup, to_properties
from yaguar.protocol.paho_speedup import _original_unpack


@pytest.fixture(autouse=True)
def _reinstall():
    paho_speedup.install()  # opt-in: importing yaguar.protocol patches nothing
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
            # Each decoder gets its own copy: ours hands a large bytearray payload over in place.
            packet = _packet.decode_publish(
                header, bytearray(body) if isinstance(body, bytearray) else body, protocol
            )
            # Properties has no __eq__: compare what it holds
            results.append(packet._replace(properties=packet.properties and packet.properties.json()))
        except Exception as exc:  # compared below: both must fail the same way
            results.append(exc)
    return results


def test_same_result_as_paho_and_payload_untouched() -> None:
    payload = bytes(range(256)) * 6000  # 1.5 MB
    fast, slow = decode_both(0x32, bytearray(publish_body(payload)))
    assert fast == slow  # every field: dup, qos, retain, topic, mid, properties, payload
    assert fast.payload == payload
    assert isinstance(fast.payload, bytearray)  # handed over in place, not copied

    assert fast.mid == 7 and fast.topic == b"yaguar/v1/cam-1/frame"
    assert dict(fast.properties["UserProperty"])["seq"] == "42"
    assert fast.properties["ContentType"] == "image/jpeg"


def test_small_payloads_and_bytes_packets_are_copied_into_bytes() -> None:
    small, _ = decode_both(0x32, bytearray(publish_body(b"small json")))
    assert small.payload == b"small json" and isinstance(small.payload, bytes)
    big_bytes, _ = decode_both(0x32, publish_body(b"x" * 100_000))
    assert big_bytes.payload == b"x" * 100_000 and isinstance(big_bytes.payload, bytes)


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


@pytest.mark.parametrize("props", [None, b"\x0d\x08\x00\x0areply/here"])  # ours, then paho's decoder
def test_the_property_decoders_never_see_the_payload(monkeypatch, props: bytes | None) -> None:
    seen: list[int] = []

    def spy(decoder):
        def spying(first, *rest):
            seen.append(len(first if isinstance(first, bytes) else rest[0]))
            return decoder(first, *rest)

        return spying

    monkeypatch.setattr(paho_speedup, "_original_unpack", spy(_original_unpack))
    monkeypatch.setattr(paho_speedup, "_frame_properties", spy(paho_speedup._frame_properties))
    paho_speedup.install()
    body = publish_body(b"\xff" * 3_000_000, props=props)
    packet = _packet.decode_publish(0x32, body, MQTTProtocolVersion.MQTTv5)
    assert seen and max(seen) < 2000  # the properties only, not the 3 MB frame behind them
    if props:
        assert packet.properties.json() == {"ResponseTopic": "reply/here"}
    else:
        assert dict(packet.properties.UserProperty)["seq"] == "42"


def test_properties_without_user_properties() -> None:
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "image/jpeg"
    fast, slow = decode_both(0x32, publish_body(b"payload", topic=b"a/b/c", props=props.pack()))
    assert fast == slow
    assert fast.payload == b"payload" and fast.properties["ContentType"] == "image/jpeg"


def prop_bytes(*props: bytes) -> bytes:
    """A property block: its length (one byte here), then the properties as given."""
    body = b"".join(props)
    assert len(body) < 128
    return bytes([len(body)]) + body


def utf8(text: bytes) -> bytes:
    return len(text).to_bytes(2, "big") + text


@pytest.mark.parametrize(
    "props",
    [
        prop_bytes(b"\x03" + utf8(b"image/jpeg"), b"\x02\x00\x00\x0e\x10", b"\x01\x01"),
        prop_bytes(b"\x26" + utf8(b"k") + utf8(b"v"), b"\x26" + utf8(b"k") + utf8(b"w")),  # repeats allowed
        prop_bytes(b"\x26" + utf8("señal".encode()) + utf8("jaguar 🐆".encode())),
        prop_bytes(b"\x08" + utf8(b"reply/here"), b"\x09" + utf8(b"\x00\x01")),  # left to paho
        prop_bytes(b"\x0b\x05", b"\x23\x00\x02"),  # subscription id, topic alias: left to paho
        prop_bytes(b"\x03" + utf8(b"a"), b"\x03" + utf8(b"b")),  # a content type twice
        prop_bytes(b"\x01\x02"),  # payload format indicator out of range
        prop_bytes(b"\x26" + utf8(b"\xff\xfe") + utf8(b"v")),  # not UTF-8
        prop_bytes(b"\x26" + utf8(b"\xed\xa0\x80") + utf8(b"v")),  # an encoded surrogate
        prop_bytes(b"\x26" + utf8(b"a\x00b") + utf8(b"v")),  # U+0000
        prop_bytes(b"\x26" + utf8(b"k") + utf8("\ufeff".encode())),  # U+FEFF
        prop_bytes(b"\x26" + utf8(b"k") + b"\x00\x09v"),  # a string longer than the properties
        prop_bytes(b"\x26\x00"),  # half a string length
        prop_bytes(b"\x11\x00\x00\x00\x01"),  # session expiry: not a PUBLISH property
        prop_bytes(b"\x7f\x00"),  # no such property
        prop_bytes(b"\x83\x00"),  # a two-byte identifier
    ],
)
def test_every_property_block_decodes_or_fails_as_in_paho(props: bytes) -> None:
    fast, slow = decode_both(0x32, bytearray(publish_body(b"\xff\xd8" * 40_000, props=props)))
    if isinstance(slow, Exception):
        assert type(fast) is type(slow), (fast, slow)
    else:
        assert fast == slow


def test_a_value_cut_short_is_malformed_not_read_from_the_payload() -> None:
    # Stock paho reads the missing byte of the expiry from the payload; ours stops at the properties' end.
    fast, _slow = decode_both(0x32, publish_body(b"\xff\xd8" * 100, props=prop_bytes(b"\x02\x00\x00\x01")))
    assert isinstance(fast, MalformedPacket)


def publish_packet(body: bytes, header: int = 0x30) -> bytes:
    """A whole PUBLISH packet: fixed header, remaining length (variable-byte integer), body."""
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (128 if length else 0))
        if not length:
            return bytes([header]) + bytes(encoded) + body


def read_with(install, pieces: list[bytes]) -> tuple[list, list]:
    """Feed a packet to a client's reader over a real socket, in pieces, as the network would."""
    install()
    messages: list = []
    client = Client(CallbackAPIVersion.VERSION2, protocol=5)
    client.on_message = lambda _c, _u, message: messages.append(
        (message.topic, message.payload, message.qos, message.properties.json())
    )
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    client._sock = ours

    def send() -> None:
        for piece in pieces:
            theirs.sendall(piece)
            time.sleep(0.02)

    sender = threading.Thread(target=send)
    sender.start()
    codes = []
    deadline = time.monotonic() + 20
    try:
        while not messages and time.monotonic() < deadline:
            select.select([ours], [], [], 0.5)
            codes.append(client._packet_read())
    finally:
        sender.join()
        ours.close()
        theirs.close()
    return messages, codes


def test_a_frame_arriving_in_pieces_is_read_as_paho_reads_it(monkeypatch) -> None:
    sizes: list[int] = []
    real_recv_into = paho_speedup._recv_into
    monkeypatch.setattr(
        paho_speedup, "_recv_into", lambda c, buf: sizes.append(len(buf)) or real_recv_into(c, buf)
    )
    payload = bytes(range(256)) * 9000  # 2.3 MB: a 4-byte remaining length, many recv_into calls
    body = publish_body(payload)
    body = body[: 2 + 21] + body[2 + 21 + 2 :]  # qos 0: no packet id, so no PUBACK to send
    packet = publish_packet(body)
    pieces = [packet[:1], packet[1:3], packet[3:1000], packet[1000:1_500_000], packet[1_500_000:]]
    ours, our_codes = read_with(paho_speedup.install, pieces)
    theirs, _ = read_with(paho_speedup.uninstall, pieces)
    assert ours == theirs
    assert len(ours) == 1 and ours[0][0] == "yaguar/v1/cam-1/frame" and ours[0][1] == payload
    assert MQTTErrorCode.MQTT_ERR_AGAIN in our_codes  # it waited for the missing pieces, then went on
    assert len(sizes) > 1 and max(sizes) <= paho_speedup.RECV_CHUNK  # our reader, straight into place


def test_a_closed_connection_mid_packet_is_reported() -> None:
    paho_speedup.install()
    client = Client(CallbackAPIVersion.VERSION2, protocol=5)
    ours, theirs = socket.socketpair()
    client._sock = ours
    theirs.sendall(publish_packet(b"\x00\x03a/b" + b"\x00" + b"x" * 5000)[:2000])
    theirs.close()
    codes = {client._packet_read() for _ in range(3)}
    ours.close()
    assert MQTTErrorCode.MQTT_ERR_CONN_LOST in codes


def test_a_remaining_length_over_four_bytes_is_a_protocol_error() -> None:
    paho_speedup.install()
    client = Client(CallbackAPIVersion.VERSION2, protocol=5)
    ours, theirs = socket.socketpair()
    client._sock = ours
    theirs.sendall(b"\x30\xff\xff\xff\xff\x7f")
    assert client._packet_read() == MQTTErrorCode.MQTT_ERR_PROTOCOL
    ours.close()
    theirs.close()


def test_paho_is_the_paho_the_speedup_was_tested_with() -> None:
    """Fails when paho-mqtt changes under the speed-up: run this file against the new paho, and when it
    passes record the new digests in paho_speedup.TESTED_SOURCES."""
    assert paho_speedup.paho_sources() == paho_speedup.TESTED_SOURCES


def test_another_paho_keeps_its_own_code(monkeypatch: pytest.MonkeyPatch) -> None:
    paho_speedup.uninstall()
    paho_speedup.tested_paho.cache_clear()
    monkeypatch.setitem(paho_speedup.TESTED_SOURCES, "Client._packet_read", "0" * 64)
    assert paho_speedup.install() is False
    assert Client._packet_read is paho_speedup._original_packet_read
    assert Properties.unpack is _original_unpack
    monkeypatch.undo()
    paho_speedup.tested_paho.cache_clear()
    assert paho_speedup.install() is True
    assert Client._packet_read is not paho_speedup._original_packet_read


def test_importing_the_protocol_patches_nothing() -> None:
    code = (
        "import yaguar.protocol, yaguar.protocol.validate\n"
        "from paho.mqtt.client import Client\n"
        "from yaguar.protocol import paho_speedup\n"
        "assert Client._packet_read is paho_speedup._original_packet_read\n"
        "from yaguar.server.ingest.mqtt_link import StationMqtt\n"
        "assert Client._packet_read is paho_speedup._original_packet_read  # only when a link is made\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
