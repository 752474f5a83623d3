"""The spool's files: one frame per file, written atomically, read back whole or refused.

A file is ``MAGIC``, the metadata length (4 bytes, big-endian), the ``FrameMeta`` JSON, then the JPEG
bytes unchanged. Files are written with ``yaguar.durable.atomic_write`` (temp file, fsync, rename, fsync
the directory): after a crash or a power cut a file is either whole or absent, and a temp file left
behind is removed when the spool opens.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yaguar.protocol.clip import ClipChunkMeta
from yaguar.protocol.messages import FrameMeta

# What a spool file holds: a frame, or one chunk of a clip (the same file layout, told apart by clip_id).
ItemMeta = FrameMeta | ClipChunkMeta

MAGIC = b"YGF1"
_HEADER = struct.Struct(">4sI")
SUFFIX = ".frame"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class SpoolError(OSError):
    """A spool file that cannot be read back."""


@dataclass(frozen=True)
class SpooledFrame:
    """A frame on disk: its metadata and where its bytes are."""

    meta: ItemMeta
    path: Path

    @property
    def seq(self) -> int:
        return self.meta.seq

    @property
    def size(self) -> int:
        return self.meta.size

    def read_payload(self) -> bytes:
        return read_frame_file(self.path)[1]


def _parse_meta(raw: bytes) -> ItemMeta:
    if b'"clip_id"' in raw:
        return ClipChunkMeta.model_validate_json(raw)
    return FrameMeta.model_validate_json(raw)


def encode_frame_file(meta: ItemMeta, payload: bytes) -> bytes:
    header = meta.to_json()
    return _HEADER.pack(MAGIC, len(header)) + header + payload


def read_frame_file(path: Path) -> tuple[ItemMeta, bytes]:
    """Read a spool file; raise ``SpoolError`` when it is not a whole frame."""
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        raise SpoolError(f"{path.name}: shorter than its header")
    magic, length = _HEADER.unpack_from(data)
    if magic != MAGIC or _HEADER.size + length > len(data):
        raise SpoolError(f"{path.name}: not a spool frame file")
    try:
        meta = _parse_meta(data[_HEADER.size : _HEADER.size + length])
    except ValueError as exc:
        raise SpoolError(f"{path.name}: bad metadata ({str(exc)[:80]})") from None
    payload = data[_HEADER.size + length :]
    if len(payload) != meta.size:
        raise SpoolError(f"{path.name}: {len(payload)} bytes of image, metadata says {meta.size}")
    return meta, payload


def read_frame_meta(path: Path) -> ItemMeta:
    """The metadata of a spool file, checking its length without reading the image: opening a spool of
    hundreds of megabytes on an SD card must not read all of it."""
    with open(path, "rb") as handle:
        head = handle.read(_HEADER.size)
        if len(head) < _HEADER.size:
            raise SpoolError(f"{path.name}: shorter than its header")
        magic, length = _HEADER.unpack(head)
        if magic != MAGIC or length > 64 * 1024:
            raise SpoolError(f"{path.name}: not a spool frame file")
        raw = handle.read(length)
        size = os.fstat(handle.fileno()).st_size
    try:
        meta = _parse_meta(raw)
    except ValueError as exc:
        raise SpoolError(f"{path.name}: bad metadata ({str(exc)[:80]})") from None
    if size != _HEADER.size + length + meta.size:
        raise SpoolError(f"{path.name}: {size} bytes on disk, its metadata says otherwise")
    return meta


def spool_summary(directory: Path | str) -> dict[str, Any] | None:
    """What a spool holds, read without changing anything (safe while the agent runs); None if absent."""
    directory = Path(directory)
    pending = directory / "pending"
    if not pending.is_dir():
        return None
    depth = size = 0
    oldest: ItemMeta | None = None
    newest_seq: int | None = None
    for path in sorted(pending.glob(f"*{SUFFIX}")):
        try:
            meta = read_frame_meta(path)
        except (SpoolError, OSError):
            continue  # a file being replaced right now, or one the agent will quarantine
        depth += 1
        size += meta.size
        oldest = oldest or meta
        newest_seq = meta.seq
    quarantine = directory / "quarantine"
    quarantined = len(list(quarantine.glob(f"*{SUFFIX}"))) if quarantine.is_dir() else 0
    return {
        "depth": depth,
        "bytes": size,
        "oldest_captured_at": oldest.captured_at.isoformat() if oldest else None,
        "newest_seq": newest_seq,
        "quarantined": quarantined,
    }
