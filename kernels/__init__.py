"""OpenCL C kernel sources, one op per file (``conv2d.cl``, ``conv2d_dw.cl``, ``gemm.cl``, ...).

``source(name)`` returns a kernel file's text with ``common.cl`` (storage type, vector loads, the
fused epilogue) in front, read as package data so an installed wheel finds them too.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

COMMON = "common"


@cache
def raw_source(name: str) -> str:
    """The text of ``<name>.cl``; raises FileNotFoundError for an unknown kernel."""
    return resources.files(__name__).joinpath(f"{name}.cl").read_text(encoding="utf-8")


def source(name: str) -> str:
    """A kernel file ready to build: ``common.cl`` followed by ``<name>.cl``."""
    return raw_source(COMMON) + "\n" + raw_source(name)


def names() -> list[str]:
    """Every kernel file shipped, without the ``.cl`` suffix (``common`` excluded)."""
    return sorted(
        p.name[:-3]
        for p in resources.files(__name__).iterdir()
        if p.name.endswith(".cl") and p.name[:-3] != COMMON
    )
