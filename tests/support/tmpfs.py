"""A tiny tmpfs for "the disk is full" tests (root only; skips with the reason where mounting is refused)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tiny_tmpfs(mount: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (mount(8) syntax, e.g. ``768k``) on ``mount``, read-only if asked (even
    root cannot write there); unmount afterwards."""
    mount.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size={size},mode=0700{',ro' if read_only else ''}",
            "tmpfs",
            str(mount),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()[:200]}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
