"""The lowering of each op to kernel launches (``conv``, ``elementwise``, ``layout``, ``misc``), and
``lower_graph``, which walks a graph through them. Importing this package fills ``LOWERINGS``, the
table of every op the OpenCL backend runs."""

from __future__ import annotations

from ...base import BackendError
from ..lower import LOWERINGS, Launch, Lowerer
from . import conv, conv_q8, dwpw_q8, elementwise, layout, misc

__all__ = ["LOWERINGS", "conv", "conv_q8", "dwpw_q8", "elementwise", "layout", "lower_graph", "misc"]


def lower_graph(lw: Lowerer) -> list[Launch]:
    for node in lw.g.nodes:
        fn = LOWERINGS.get(node.op)
        if fn is None:
            raise BackendError(f"unsupported op {node.op} (node {node.name!r})")
        fn(lw, node)
    return lw.launches
