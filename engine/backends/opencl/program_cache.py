"""Compiled OpenCL program binaries cached on disk (after tinygrad ops_cl / dlprimitives
program_cache): the key is a SHA-256 of the device, driver version, kernel source and build
options, so a driver upgrade or an edited kernel never loads a stale binary.

Writes go to a temporary file renamed into place, so two processes sharing the folder never read a
half-written binary. ``hits``/``misses`` count lookups for tests and logs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from yaguar.durable import atomic_write

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "yaguar" / "opencl"


class ProgramCache:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory) / "programs"
        self.hits = 0
        self.misses = 0
        self.stores = 0

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.bin"

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            self.misses += 1
            return None
        if not data:
            self.misses += 1
            return None
        self.hits += 1
        return data

    def put(self, key: str, binary: bytes) -> None:
        if not binary:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            atomic_write(self._path(key), binary, fsync=False)
            self.stores += 1
        except OSError as exc:  # a read-only cache folder costs rebuild time, nothing else
            log.warning("cannot write the OpenCL program cache in %s: %s", self.directory, exc)

    def drop(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
