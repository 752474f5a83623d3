"""Frames on disk: content-addressed by sha256 under the media root, written atomically.

Write to a temp file, fsync it, rename it into place, fsync the directory: after a crash a frame is
either whole under its final name or absent, never partial. A database row only ever points at a file
that was already durable.
"""

from __future__ import annotations

import os
import secrets
from concurrent.futures import Executor
from pathlib import Path

from yaguar.durable import fsync_dir


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

    def write_many(self, frames: list[tuple[str, bytes]], pool: Executor | None = None) -> list[str]:
        """Durably write (sha256, bytes) pairs; return their relative paths. Files already present (same
        content, same name) are not written again. With a thread pool the writes and fsyncs overlap
        (fsync releases the GIL, and the disk merges the flushes); directories are fsynced once."""
        relatives = [self.relative_path(sha256) for sha256, _ in frames]
        todo = {}
        for (_sha256, data), relative in zip(frames, relatives, strict=True):
            final = self.root / relative
            if not final.exists():
                todo[final] = data
        temps: list[Path] = []
        try:
            for final in todo:
                final.parent.mkdir(parents=True, exist_ok=True)
                temps.append(final.parent / f".{final.stem}.{secrets.token_hex(4)}.tmp")
            jobs = list(zip(temps, todo.values(), strict=True))
            for _ in (pool.map if pool else map)(_write_synced, jobs):
                pass  # consume the results, so the first failed write raises here
            for tmp, final in zip(temps, todo, strict=True):
                os.replace(tmp, final)
            for directory in {final.parent for final in todo}:
                fsync_dir(directory)
        except BaseException:
            for tmp in temps:
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


def _write_synced(job: tuple[Path, bytes]) -> None:
    tmp, data = job
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
