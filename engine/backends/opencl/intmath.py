"""Integer arithmetic of sizes and work ranges, in one place."""

from __future__ import annotations


def cdiv(x: int, m: int) -> int:
    """Ceiling division: how many blocks of ``m`` cover ``x``."""
    return -(-x // m)


def round_up(x: int, m: int) -> int:
    """``x`` rounded up to a multiple of ``m``."""
    return cdiv(x, m) * m
