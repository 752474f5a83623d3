"""Real EXIF written with Pillow into copies of the shared images (never into the shared files)."""

from __future__ import annotations

import struct
from pathlib import Path

from PIL import ExifTags, Image

from yaguar.engine.sdcard import HEIF_AVAILABLE  # registers the HEIC writer with Pillow too

DATETIME_ORIGINAL = 0x9003
OFFSET_TIME_ORIGINAL = 0x9011


def copy_with_exif(
    source: Path, target: Path, when: str | None, offset: str | None = None, reduce: int = 1
) -> Path:
    """Save ``source`` as ``target`` (format from its suffix) with only the given capture time in EXIF."""
    assert HEIF_AVAILABLE or target.suffix.lower() not in {".heic", ".heif"}
    with Image.open(source) as image:
        picture = image.convert("RGB")
    if reduce > 1:
        picture = picture.reduce(reduce)
    exif = Image.Exif()
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    if when is not None:
        sub[DATETIME_ORIGINAL] = when
    if offset is not None:
        sub[OFFSET_TIME_ORIGINAL] = offset
    picture.save(target, exif=exif.tobytes(), quality=90)
    return target


def with_broken_exif(jpeg: bytes) -> bytes:
    """A JPEG whose APP1 Exif segment is cut mid-IFD: its first IFD points far past the segment's end."""
    body = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 40) + b"\x12\x34" * 3
    segment = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    return jpeg[:2] + segment + jpeg[2:]
