"""Frames on disk: content-addressed by sha256 under the media root, written atomically.

Write to a temp file, fsync it, rename it into place, fsync the directory: after a crash a frame is
either whole under its final name or absent, never partial. A database row only ever points at a file
that was already durable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def relative_path(sha256: str) -> str:
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.jpg"

    def resolve(self, relative: str) -> Path | None:
        """The absolute path of a stored file, or None if ``relative`` would leave the media root."""
        path = (self.root / relative).resolve()
        return path if path.is_relative_to(self.root) and path.is_file() else None

    def write_many(self, frames: list[tuple[str, bytes]]) -> list[str]:
        """Durably write (sha256, bytes) pairs; return their relative paths. Files already present (same
        content, same name) are not written again. Directories are fsynced once per batch."""
        dirs: set[Path] = set()
        pending: list[tuple[Path, Path]] = []
        relatives = []
        try:
            for sha256, data in frames:
                relative = self.relative_path(sha256)
                relatives.append(relative)
                final = self.root / relative
                if final.exists():
                    continue
                final.parent.mkdir(parents=True, exist_ok=True)
                tmp = final.parent / f".{sha256}.{secrets.token_hex(4)}.tmp"
                with open(tmp, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                pending.append((tmp, final))
            for tmp, final in pending:
                os.replace(tmp, final)
                dirs.add(final.parent)
            for directory in dirs:
                _fsync_dir(directory)
        except BaseException:
            for tmp, _ in pending:
                tmp.unlink(missing_ok=True)
            raise
        return relatives

    def remove_temp_files(self) -> int:
        """Delete temp files left by a crash mid-write; returns how many."""
        count = 0
        for tmp in self.root.glob("*/*/.*.tmp"):
            tmp.unlink(missing_ok=True)
            count += 1
        return count


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
