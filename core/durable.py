"""Durable files: the one way the project replaces a file, used by the agent's spool, the station's media
store, the device CA and the caches.

``atomic_write`` writes a temp file beside the target and renames it over the target, so a reader or a
crash sees the old file or the new one, never a part. With ``fsync`` the data and the rename are also
flushed, so the new file survives a power cut.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

# Temp files start with this and end with ".tmp": whoever opens a folder after a crash removes them.
TEMP_PREFIX = ".tmp-"


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` survive a power cut (the entry lives in the directory)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: Path,
    data: bytes | bytearray,
    *,
    fsync: bool = True,
    mode: int = 0o644,
    drop_from_cache: bool = False,
) -> None:
    """Replace ``path`` with ``data``: whole or absent after a crash. ``mode`` is set exactly (whatever
    the umask); ``drop_from_cache`` frees the file's pages from the OS page cache once they are on
    disk, for data that is written once and rarely read back soon."""
    path = Path(path)
    tmp = path.with_name(f"{TEMP_PREFIX}{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
            if drop_from_cache:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)
