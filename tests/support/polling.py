"""Waiting in a test for what another thread or process does: poll, and fail in one line when it never
happens."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    check: Callable[[], object], timeout: float, what: str = "the condition", step: float = 0.05
) -> None:
    """Return once ``check()`` is true; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(step)
    raise AssertionError(f"{what} not reached in {timeout:g} s")
