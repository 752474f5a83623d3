"""Cheap JPEG checks that need no decoder: magic bytes, the frame header's size, and the end marker.

Both sides use them: the agent before it spools a frame, the station before it stores one. A full decode
costs tens of milliseconds on a 12 MP frame; these checks cost microseconds and catch the cases that
matter at the door: not a JPEG, a truncated upload, and a "decompression bomb" header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import ProtocolError

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
# Start-of-frame markers carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SOS = 0xDA
_APP1 = 0xE1
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])


class JpegError(ProtocolError):
    """Why bytes are not an acceptable JPEG; ``reason`` is a short machine-readable code."""


@dataclass(frozen=True)
class JpegInfo:
    width: int
    height: int
    components: int


def inspect_jpeg(data: bytes | bytearray | memoryview, max_pixels: int | None = None) -> JpegInfo:
    """Check the structure of a JPEG and return its size, or raise ``JpegError``.

    ``max_pixels`` refuses headers that announce more pixels than any camera makes, before anything
    tries to allocate them.
    """
    if not isinstance(data, bytes | bytearray):  # a memoryview: rfind below needs bytes (one copy)
        data = bytes(data)
    if len(data) == 0:
        raise JpegError("empty_payload", "the image is empty (0 bytes)")
    if bytes(data[:2]) != SOI:
        kind = _sniff(bytes(data[:8]))
        raise JpegError("not_jpeg", f"the image is not a JPEG{f' (looks like {kind})' if kind else ''}")
    pos = 2
    info: JpegInfo | None = None
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise JpegError("corrupt_jpeg", f"JPEG marker expected at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill bytes before a marker are allowed
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            raise JpegError("corrupt_jpeg", f"JPEG segment at byte {pos} has a bad length")
        if marker in _SOF_MARKERS:
            if pos + 10 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            info = JpegInfo(width=width, height=height, components=data[pos + 9])
            if width == 0 or height == 0:
                raise JpegError("corrupt_jpeg", f"JPEG header says the image is {width}x{height}")
            if max_pixels is not None and width * height > max_pixels:
                raise JpegError(
                    "image_too_large",
                    f"JPEG header says {width}x{height}, more than the {max_pixels} pixels allowed",
                )
        if marker == _SOS:
            if info is None:
                raise JpegError("corrupt_jpeg", "JPEG has image data before its frame header")
            # Inside entropy-coded data 0xFF is always followed by 0x00 or a restart marker, so an
            # FF D9 after the scan starts is the end of the image (EXIF thumbnails end before it).
            # Searched from the end, where it is: a forward search stops at every 0xFF in the scan.
            if data.rfind(EOI, pos) == -1:
                raise JpegError("truncated_jpeg", "the JPEG is truncated (no end-of-image marker)")
            return info
        pos += 2 + length
    raise JpegError("truncated_jpeg", "the JPEG is truncated (it ends before its image data)")


def exif_segment(data: bytes) -> bytes | None:
    """The APP1 Exif segment of a JPEG (marker, length and body), None when it has none before its frame
    header. A copy that is scaled and re-encoded keeps it, so the orientation the camera wrote travels
    with the pixels it describes."""
    pos = 2 if data[:2] == SOI else len(data)
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF or marker in _STANDALONE:
            pos += 1 if marker == 0xFF else 2
            continue
        if marker in _SOF_MARKERS or marker == _SOS:
            return None
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker == _APP1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
            return bytes(data[pos : pos + 2 + length])
        pos += 2 + max(length, 2)
    return None


def with_exif(jpeg: bytes, segment: bytes | None) -> bytes:
    """``jpeg`` with ``segment`` (from ``exif_segment``) put back after its SOI (and JFIF APP0, if any)."""
    if not segment:
        return jpeg
    pos = 2
    if jpeg[2:4] == b"\xff\xe0":
        (length,) = struct.unpack(">H", jpeg[4:6])
        pos += 2 + length
    return jpeg[:pos] + segment + jpeg[pos:]


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG"):
        return "PNG"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head.startswith(b"GIF8"):
        return "GIF"
    if head.startswith(b"RIFF"):
        return "RIFF/WebP"
    if head.startswith(b"BM"):
        return "BMP"
    return None
