"""Frames on disk: content-addressed by sha256 under the media root, written atomically.

Write to a temp file, fsync it, rename it into place, fsync the directory: after a crash a frame is
either whole under its final name or absent, never partial. A database row only ever points at a file
that was already durable.
"""

from __future__ import annotations

from pathlib import Path

from yaguar.durable import atomic_write, fsync_dir


class MediaStore:
    def __init__(self, root: Path, drop_from_cache: bool = True) -> None:
        self.root = Path(root).resolve()
        self.drop_from_cache = drop_from_cache
        self.root.mkdir(parents=True, exist_ok=True)
        self._make_directories()

    def _make_directories(self) -> None:
        """The 256 directories, made once."""
        missing = [self.root / f"{i:02x}" for i in range(256) if not (self.root / f"{i:02x}").is_dir()]
        for directory in missing:
            directory.mkdir(exist_ok=True)
        if missing:
            fsync_dir(self.root)

    @staticmethod
    def relative_path(sha256: str) -> str:
        # One level of 256 directories, all made up front: writing a frame never creates a directory
        # (a new directory costs an inode and one more journal commit). Ten years of 10,000 frames a
        # day is ~140,000 files per directory, which ext4's hashed directories look up directly.
        # Stores written with the older two-level layout keep working: rows hold the relative path.
        return f"{sha256[:2]}/{sha256}.jpg"

    def resolve(self, relative: str) -> Path | None:
        """The absolute path of a stored file, or None if ``relative`` would leave the media root."""
        path = (self.root / relative).resolve()
        return path if path.is_relative_to(self.root) and path.is_file() else None

    def write(self, sha256: str, data: bytes | bytearray) -> str:
        """Durably write a frame; return its path relative to the root once the file is durable. A file
        already present (same content, same name) is not written again. Safe from many threads:
        concurrent fsyncs share the filesystem's journal commits."""
        relative = self.relative_path(sha256)
        final = self.root / relative
        if final.exists():
            return relative
        # A new frame is read once by the pipeline, if at all; the page cache is better spent on the
        # database and thumbnails. Freeing the pages now also lets the next frame reuse memory that is
        # still mapped (a big saving on virtual machines).
        try:
            atomic_write(final, data, drop_from_cache=self.drop_from_cache)
        except FileNotFoundError:  # its directory was removed by hand since start-up: made again, durably
            final.parent.mkdir(exist_ok=True)
            fsync_dir(self.root)
            atomic_write(final, data, drop_from_cache=self.drop_from_cache)
        return relative

    def remove_temp_files(self) -> int:
        """Delete temp files left by a crash mid-write; returns how many."""
        count = 0
        for pattern in ("*/.*.tmp", "*/*/.*.tmp"):  # this layout and the older two-level one
            for tmp in self.root.glob(pattern):
                tmp.unlink(missing_ok=True)
                count += 1
        return count
