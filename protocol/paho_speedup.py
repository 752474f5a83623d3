"""A fix for a cost in paho-mqtt 2.x's MQTT v5 decoder that matters for camera frames.

``Properties.unpack`` is handed the whole rest of a PUBLISH packet (properties *and* payload) and strips
what it has read with ``buffer = buffer[n:]`` several times per property; ``VariableByteIntegers.decode``
does the same once per byte. With 15 user properties and a 1.5 MB JPEG that copies the frame about 50
times: ~70 MB of memcpy per message, under the GIL, which capped the station's ingest. Here ``unpack``
is given only the property bytes (their length is the variable-byte integer in front), so the payload
is never copied by it. The decoded result is the same (``tests/unit/test_paho_speedup.py``).
"""

from __future__ import annotations

from paho.mqtt.properties import Properties, VariableByteIntegers

_original_unpack = Properties.unpack


def _unpack_properties_only(self: Properties, buffer: bytes) -> tuple[Properties, int]:
    length, length_bytes = VariableByteIntegers.decode(bytes(buffer[:4]))
    return _original_unpack(self, bytes(buffer[: length_bytes + length]))


def install() -> None:
    if Properties.unpack is not _unpack_properties_only:
        Properties.unpack = _unpack_properties_only
