"""The paho decoder fix decodes frames exactly as paho does, without copying the payload per property."""

from __future__ import annotations

from datetime import UTC, datetime

from paho.mqtt._packet import decode_publish
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from yaguar.protocol import build_meta, paho_speedup, to_properties
from yaguar.protocol.paho_speedup import _original_unpack


def publish_body(payload: bytes) -> bytes:
    """The bytes after a PUBLISH fixed header: topic, packet id, properties, payload."""
    meta = build_meta(
        payload, device="cam-1", seq=42, capture_id="c", event_id="e", burst_index=0, burst_size=3,
        captured_at=datetime(2026, 11, 26, tzinfo=UTC), trigger="pir",
    )  # fmt: skip
    topic = b"yaguar/v1/cam-1/frame"
    props = to_properties(meta).pack()
    return len(topic).to_bytes(2, "big") + topic + (7).to_bytes(2, "big") + props + payload


def decode(body: bytes):
    return decode_publish(0x32, body, MQTTProtocolVersion.MQTTv5)


def test_same_result_as_paho_and_payload_untouched() -> None:
    payload = bytes(range(256)) * 6000  # 1.5 MB
    body = publish_body(payload)
    paho_speedup.install()
    fast = decode(body)
    Properties.unpack = _original_unpack
    try:
        slow = decode(body)
    finally:
        paho_speedup.install()
    assert fast.payload == slow.payload == payload
    assert fast.properties.UserProperty == slow.properties.UserProperty
    assert dict(fast.properties.UserProperty)["seq"] == "42"
    assert fast.properties.ContentType == "image/jpeg"


def test_the_property_decoder_never_sees_the_payload(monkeypatch) -> None:
    seen: list[int] = []

    def spy(self, buffer):
        seen.append(len(buffer))
        return _original_unpack(self, buffer)

    monkeypatch.setattr(paho_speedup, "_original_unpack", spy)
    paho_speedup.install()
    decode(publish_body(b"\xff" * 3_000_000))
    assert len(seen) == 1
    assert seen[0] < 2000  # the properties only, not the 3 MB frame behind them


def test_properties_without_user_properties() -> None:
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "image/jpeg"
    body = (5).to_bytes(2, "big") + b"a/b/c" + (1).to_bytes(2, "big") + props.pack() + b"payload"
    paho_speedup.install()
    packet = decode(body)
    assert packet.payload == b"payload"
    assert packet.properties.ContentType == "image/jpeg"
