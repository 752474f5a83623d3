"""Fixes for costs in paho-mqtt 2.x's receive path that matter for 1-3 MB camera frames.

Three places copied or allocated the whole frame again and again, under the GIL:

- ``Properties.unpack`` is handed the rest of a PUBLISH packet (properties *and* payload) and strips what
  it has read with ``buffer = buffer[n:]`` several times per property: with 15 user properties about 50
  copies of the frame per message. Here it is given only the property bytes (their length is the
  variable-byte integer in front). Even then it took about 0.3 ms per frame, mostly in attribute-name
  checks; so the properties a frame carries (content type, expiry, user properties) are read here
  directly, and anything else, or anything irregular, is left to paho's decoder and its errors.
- ``decode_publish`` cuts topic, packet id and properties off the front with ``struct.unpack`` and
  slicing, a fresh copy of the frame at each step. Here it reads through a ``memoryview``; a large
  payload is then the receive buffer itself with the header cut off its front (a ``bytearray``,
  O(1)), a small one is copied into ``bytes`` as before.
- ``Client._packet_read`` receives a packet's body with ``recv`` calls for the whole remaining length
  (tens per frame, each allocating a buffer of the frame's size) and appends each piece to a growing
  ``bytearray``. Here the body is received with ``recv_into`` straight into one buffer of its final
  size, not zeroed first when it is large (``bytearray(n)`` zeroes it, under the GIL); paho's own code
  then handles the complete packet as before. The command byte and the length
  are read as paho reads them.

The decoded results are the same as paho's (``tests/unit/test_paho_speedup.py``), errors included.

Opt-in: nothing is patched on import. ``install()`` is called by the two clients that receive frames,
the agent's publisher and the station's ingest link. It patches only the paho it was tested with: the
source of each paho function it replaces must hash to ``TESTED_SOURCES`` (paho-mqtt 2.2.0). Any other
paho keeps its own code, with one warning in the log; the unit test fails on it, so a paho upgrade
means re-running these tests and recording the new digests.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import inspect
import logging
import socket
import ssl
import struct
from collections.abc import Callable

import paho.mqtt
from paho.mqtt import _packet
from paho.mqtt.client import MQTT_LOG_ERR, Client, time_func
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers

log = logging.getLogger(__name__)
RECV_CHUNK = 256 * 1024
# From this size on a payload is handed over in the buffer it was received into (a ``bytearray``)
# instead of being copied into ``bytes``: camera frames, never the small JSON messages.
IN_PLACE_MIN = 64 * 1024

_new_bytearray = ctypes.pythonapi.PyByteArray_FromStringAndSize  # with NULL: contents left as they are
_new_bytearray.argtypes = (ctypes.c_char_p, ctypes.c_ssize_t)
_new_bytearray.restype = ctypes.py_object

_original_unpack = Properties.unpack
_original_decode_publish = _packet.decode_publish
_original_packet_read = Client._packet_read


def _unpack_properties_only(self: Properties, buffer: bytes) -> tuple[Properties, int]:
    length, length_bytes = VariableByteIntegers.decode(bytes(buffer[:4]))
    props = bytes(buffer[: length_bytes + length])
    if self.packetType == PacketTypes.PUBLISH and len(props) == length_bytes + length:
        values = _frame_properties(props, length_bytes)
        if values is not None:
            self.clear()
            for name, value in values.items():
                object.__setattr__(self, name, value)  # checked above; paho's setattr checks are slow
            return self, len(props)
    return _original_unpack(self, props)


class _IrregularError(Exception):
    """Something paho's decoder should judge (and report) itself."""


def _frame_properties(props: bytes, pos: int) -> dict[str, object] | None:
    """The PUBLISH properties our frames carry, as paho names them; None if there is anything else, a
    repeat, or a value out of paho's bounds."""
    values: dict[str, object] = {}
    pairs: list[tuple[str, str]] = []
    try:
        while pos < len(props):
            ident, pos = props[pos], pos + 1
            if ident == 38:  # User Property, a string pair; may repeat
                key, pos = _utf8(props, pos)
                value, pos = _utf8(props, pos)
                pairs.append((key, value))
            elif ident == 3 and "ContentType" not in values:
                values["ContentType"], pos = _utf8(props, pos)
            elif ident == 2 and "MessageExpiryInterval" not in values and pos + 4 <= len(props):
                values["MessageExpiryInterval"] = int.from_bytes(props[pos : pos + 4], "big")
                pos += 4
            elif (
                ident == 1
                and "PayloadFormatIndicator" not in values
                and props[pos : pos + 1] in (b"\0", b"\1")
            ):
                values["PayloadFormatIndicator"], pos = props[pos], pos + 1
            else:
                return None
    except _IrregularError:
        return None
    if pairs:
        values["UserProperty"] = pairs
    return values


def _utf8(props: bytes, pos: int) -> tuple[str, int]:
    """A length-prefixed UTF-8 string as MQTT allows it (no U+0000, no U+FEFF; surrogates fail decoding)."""
    if pos + 2 > len(props):
        raise _IrregularError
    end = pos + 2 + int.from_bytes(props[pos : pos + 2], "big")
    if end > len(props):
        raise _IrregularError
    try:
        text = props[pos + 2 : end].decode("utf-8")
    except UnicodeDecodeError:
        raise _IrregularError from None
    if "\0" in text or "\ufeff" in text:
        raise _IrregularError
    return text, end


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
        in_place = packet if isinstance(packet, bytearray) and len(packet) - pos >= IN_PLACE_MIN else None
        payload = in_place if in_place is not None else bytes(view[pos:])
    if in_place is not None:
        del in_place[:pos]  # O(1) for a bytearray: the frame stays where it was received
    return _packet.PublishPacket(
        dup=bool(header & 0x08),
        qos=qos,
        retain=bool(header & 0x01),
        topic=topic,
        mid=mid,
        properties=properties,
        payload=payload,
    )


def _packet_read(self: Client) -> MQTTErrorCode:
    state = self._in_packet
    if not isinstance(self._sock, socket.socket):  # websockets: paho's own reader
        return _original_packet_read(self)
    try:
        if state["command"] == 0:
            command = self._sock_recv(1)
            if not command:
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            state["command"] = command[0]
        while not state["have_remaining"]:  # the remaining length: 1 to 4 bytes, 7 bits each
            byte = self._sock_recv(1)
            if not byte:
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            state["remaining_count"].append(byte[0])
            if len(state["remaining_count"]) > 4:
                return MQTTErrorCode.MQTT_ERR_PROTOCOL
            state["remaining_length"] += (byte[0] & 127) * state["remaining_mult"]
            state["remaining_mult"] *= 128
            if not byte[0] & 128:
                state["have_remaining"] = 1
                state["to_process"] = state["remaining_length"]
                state["packet"] = _receive_buffer(state["remaining_length"])
        body = state["packet"]
        with memoryview(body) as view:
            for _ in range(100):  # as paho: let the loop do other work during a huge packet
                if not state["to_process"]:
                    break
                start = len(body) - state["to_process"]
                received = _recv_into(self, view[start : start + RECV_CHUNK])
                if not received:
                    return MQTTErrorCode.MQTT_ERR_CONN_LOST
                state["to_process"] -= received
            with self._msgtime_mutex:
                self._last_bytes_received = time_func()
            if state["to_process"]:
                return MQTTErrorCode.MQTT_ERR_AGAIN
    except BlockingIOError:
        return MQTTErrorCode.MQTT_ERR_AGAIN
    except OSError as err:
        self._easy_log(MQTT_LOG_ERR, "failed to receive on socket: %s", err)
        return MQTTErrorCode.MQTT_ERR_CONN_LOST
    return _original_packet_read(self)  # the whole packet is in: paho decodes, dispatches and resets


def _receive_buffer(size: int) -> bytearray:
    """A buffer for a packet body. A large one is not zeroed: ``recv_into`` fills all of it before paho
    decodes it, and a packet cut short is thrown away unread."""
    return _new_bytearray(None, size) if size >= IN_PLACE_MIN else bytearray(size)


def _recv_into(self: Client, buffer: memoryview) -> int:
    """``socket.recv_into`` with paho's mapping of TLS's want-read/want-write to "try again"."""
    sock = self._sock
    assert isinstance(sock, socket.socket)  # _packet_read leaves websockets to paho
    try:
        return sock.recv_into(buffer)
    except ssl.SSLWantReadError as err:
        raise BlockingIOError() from err
    except ssl.SSLWantWriteError as err:
        self._call_socket_register_write()
        raise BlockingIOError() from err


# sha256 of the source of each paho function replaced here, in the paho-mqtt these replacements were
# written for and tested against (2.2.0).
TESTED_SOURCES = {
    "Properties.unpack": "1993f88e4f28b92acd7adf9ed14bbe30f7ae3f0718cf6f6a5e64661ed5c06db5",
    "_packet.decode_publish": "50c158487fa3d96ecac8944c9c10b2a63d3955970512a2e4fa72f34713d17235",
    "Client._packet_read": "bbe32d8af1e37955175d7835c8b0a16a61435dbc40e563f447f08b102c776347",
}


def paho_sources() -> dict[str, str]:
    """The same digests for the paho installed now."""
    originals: dict[str, Callable[..., object]] = {
        "Properties.unpack": _original_unpack,
        "_packet.decode_publish": _original_decode_publish,
        "Client._packet_read": _original_packet_read,
    }
    return {
        name: hashlib.sha256(inspect.getsource(fn).encode()).hexdigest() for name, fn in originals.items()
    }


@functools.cache
def tested_paho() -> bool:
    """Whether the installed paho is the one tested (checked once; says so once when it is not)."""
    try:
        tested = paho_sources() == TESTED_SOURCES
    except (OSError, TypeError):  # no source to read (a frozen or stripped install)
        tested = False
    if not tested:
        log.warning(
            "paho-mqtt %s is not the paho the receive-path speed-up was tested with: using paho's own code",
            paho.mqtt.__version__,
        )
    return tested


def install() -> bool:
    """Patch paho's receive path if it is the paho this was tested with; True when patched."""
    if not tested_paho():
        return False
    _set_receive_path(_unpack_properties_only, _decode_publish, _packet_read)
    return True


def uninstall() -> None:
    """Back to paho's own code (the tests compare both)."""
    _set_receive_path(_original_unpack, _original_decode_publish, _original_packet_read)


def _set_receive_path(
    unpack: Callable[..., object], decode_publish: Callable[..., object], packet_read: Callable[..., object]
) -> None:
    """Put these three functions in paho's receive path. A deliberate patch of paho's classes, so through
    setattr: the type checker rightly refuses assigning to a method."""
    patches: tuple[tuple[object, str, Callable[..., object]], ...] = (
        (Properties, "unpack", unpack),
        (_packet, "decode_publish", decode_publish),
        (Client, "_packet_read", packet_read),
    )
    for owner, name, function in patches:
        setattr(owner, name, function)
