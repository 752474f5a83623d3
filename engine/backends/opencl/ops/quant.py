"""FakeQuant (a Q -> DQ pair the fusion pass could not fold into a conv epilogue: after a Concat,
a MaxPool, a Resize, the model input) as one vectorised pass over each batch item (kernels/quant.cl)."""

from __future__ import annotations

import numpy as np

from ..graph import Node
from ..intmath import cdiv
from ..lower import Lowerer


def lower_fake_quant(lw: Lowerer, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    (xbuf, xoff, xbs), (ybuf, yoff, ybs) = lw.addr(x), lw.addr(y)
    shape = lw.shape(y)
    batch = shape[0] if shape else 1
    inner = int(np.prod(shape[1:])) if shape else 1
    s, z, lo, hi = node.attrs["q"]
    args = [np.int32(inner), *map(np.float32, (s, z, lo, hi)), xbuf, xoff, xbs, ybuf, yoff, ybs]
    kernel = lw.kernel("quant", "fake_quant8")
    total = batch * inner
    lw.add(
        node,
        "fake_quant8",
        kernel,
        args,
        (cdiv(inner, 8), batch),
        4.0 * total,
        float(lw.itemsize * 2 * total),
    )
