"""Hostile and broken images made from real ones, for the bad-input tests."""

from __future__ import annotations

import struct

SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def truncated(jpeg: bytes, keep: float = 0.5) -> bytes:
    return jpeg[: int(len(jpeg) * keep)]


def with_dimensions(jpeg: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its frame header claiming another size (a decompression bomb when huge)."""
    data = bytearray(jpeg)
    pos = 2
    while pos < len(data):
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in SOF_MARKERS:
            data[pos + 5 : pos + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        pos += 2 + length
    raise ValueError("no frame header found")


def png_bytes() -> bytes:
    """A real, valid 1x1 PNG (the smallest image that is not a JPEG)."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def tiff_bytes() -> bytes:
    """The header of a little-endian TIFF: what a TIFF saved as .JPG starts with."""
    return b"II*\x00\x08\x00\x00\x00" + b"\x00" * 64
