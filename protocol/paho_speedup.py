"""Fixes for costs in paho-mqtt 2.x's receive path that matter for 1-3 MB camera frames.

Three places copied or allocated the whole frame again and again, under the GIL:

- ``Properties.unpack`` is handed the rest of a PUBLISH packet (properties *and* payload) and strips what
  it has read with ``buffer = buffer[n:]`` several times per property: with 15 user properties about 50
  copies of the frame per message. Here it is given only the property bytes (their length is the
  variable-byte integer in front).
- ``decode_publish`` cuts topic, packet id and properties off the front with ``struct.unpack`` and
  slicing, a fresh copy of the frame at each step. Here it reads through a ``memoryview`` and copies the
  payload once.
- ``Client._sock_recv`` is called with the whole remaining packet length, so each ``recv`` (tens per
  frame, each returning what the socket holds) allocated a buffer of the frame's size and shrank it.
  Capping the request at ``RECV_CHUNK`` keeps those buffers small and reused.

The decoded results are the same as paho's (``tests/unit/test_paho_speedup.py``), errors included.
"""

from __future__ import annotations

import struct

from paho.mqtt import _packet
from paho.mqtt.client import Client
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers

RECV_CHUNK = 256 * 1024

_original_unpack = Properties.unpack
_original_decode_publish = _packet.decode_publish
_original_sock_recv = Client._sock_recv


def _unpack_properties_only(self: Properties, buffer: bytes) -> tuple[Properties, int]:
    length, length_bytes = VariableByteIntegers.decode(bytes(buffer[:4]))
    return _original_unpack(self, bytes(buffer[: length_bytes + length]))


@_packet.convert_exception  # struct and property errors become MalformedPacket, as in paho
def _decode_publish(
    header: int, packet: bytes | bytearray, protocol: MQTTProtocolVersion
) -> _packet.PublishPacket:
    qos = (header & 0x06) >> 1
    with memoryview(packet) as view:
        (topic_length,) = struct.unpack_from("!H", view, 0)
        pos = 2 + topic_length
        if pos > len(view):
            raise MalformedPacket(f"topic length {topic_length} is past the end of the packet")
        topic = bytes(view[2:pos])
        if protocol != MQTTProtocolVersion.MQTTv5 and not topic:
            raise MalformedPacket("topic can't be empty in MQTTv3")
        mid = 0
        if qos > 0:
            (mid,) = struct.unpack_from("!H", view, pos)
            pos += 2
        properties = None
        if protocol == MQTTProtocolVersion.MQTTv5:
            properties = Properties(PacketTypes.PUBLISH)
            _props, properties_length = properties.unpack(view[pos:])
            pos += properties_length
        payload = bytes(view[pos:])
    return _packet.PublishPacket(
        dup=bool(header & 0x08),
        qos=qos,
        retain=bool(header & 0x01),
        topic=topic,
        mid=mid,
        properties=properties,
        payload=payload,
    )


def _sock_recv_chunked(self: Client, bufsize: int) -> bytes:
    return _original_sock_recv(self, min(bufsize, RECV_CHUNK))


def install() -> None:
    Properties.unpack = _unpack_properties_only
    _packet.decode_publish = _decode_publish
    Client._sock_recv = _sock_recv_chunked


def uninstall() -> None:
    """Back to paho's own code (the tests compare both)."""
    Properties.unpack = _original_unpack
    _packet.decode_publish = _original_decode_publish
    Client._sock_recv = _original_sock_recv
