"""A depthwise 3x3 int8 conv fused with the VNNI 1x1 conv that reads it (``ConvQ8DwPw``): the
depthwise conv and projection of MobileNetV2's inverted residual blocks in one launch
(kernels/conv2d_q8.cl, ``conv2d_dwpw_q8dot``), so the depthwise output is never stored.

``fuse_dw_pw`` rewrites the graph after ``int8.plan_int8`` where the int8 1x1 convs run on VNNI: a
``ConvQ8`` depthwise 3x3 (stride 1 with padding 1, or stride 2 with padding 0 or 1 on each side;
at most ``DWPW_MAX`` channels), whose epilogue is the integer requantisation alone
(Relu/Clip and requantise, onnxruntime's QLinearConv: ``integer_epilogue`` mode 1), whose 8-bit
output only a 1x1 ``ConvQ8`` reads as its input, and that 1x1 conv's epilogue also mode 1 with an
8-bit output (+ an 8-bit residual). Every other conv keeps its own launch. The fused launch
measured 5.2-5.3 ms against 7.0-7.1 for the separate ones on MobileNetV2 int8, batch 1 (PoCL, 2
cores, engine/README.md "Int8 on OpenCL"). The stored values are
those of the two separate kernels: the same integer sums and the same float operations in each
requantisation (tests/integration/test_opencl_int8_vnni.py).
"""

from __future__ import annotations

import numpy as np

from ...base import BackendError
from ..graph import Graph, Node
from ..int8 import Stored
from ..intmath import cdiv
from ..lower import Lowerer, lowering, vec
from .conv_q8 import (
    VNNI,
    addr8,
    dot_tiles,
    dot_weights,
    epilogue_of,
    float_sums_exact,
    graph_bias,
    integer_epilogue,
    q8_kernel,
    q8_weights,
)

OP = "ConvQ8DwPw"  # the fused node
DWPW_MAX = 1024  # the most depthwise channels the kernel's private column holds (conv2d_q8.cl)


def _depthwise_3x3(g: Graph, n: Node) -> bool:
    if n.op != "ConvQ8":
        return False
    cin = g.values[n.inputs[0]].shape[1]
    return (
        int(n.attrs.get("group", 1)) == cin == g.values[n.outputs[0]].shape[1]
        and 0 < cin <= DWPW_MAX
        and list(n.attrs["kernel_shape"]) == [3, 3]
        and list(n.attrs["dilations"]) == [1, 1]
        and (
            (list(n.attrs["strides"]) == [1, 1] and list(n.attrs["pads"]) == [1, 1, 1, 1])
            or (list(n.attrs["strides"]) == [2, 2] and max(n.attrs["pads"]) <= 1)
        )
    )


def _pointwise(n: Node) -> bool:
    return (
        n.op == "ConvQ8"
        and int(n.attrs.get("group", 1)) == 1
        and list(n.attrs["kernel_shape"]) == [1, 1]
        and list(n.attrs["strides"]) == [1, 1]
        and not any(n.attrs["pads"])
    )


def _requant_only(g: Graph, n: Node, residual_ok: bool) -> bool:
    """The conv's epilogue is mode 1 (integer requantisation to 8 bits, + an 8-bit residual where
    ``residual_ok``)."""
    if n.fused.get("out_q8") is None or (n.fused.get("residual") and not residual_ok):
        return False
    if n.fused.get("residual") and n.fused.get("res_q8") is None:
        return False
    quant = g.values[n.inputs[1]].quant
    if quant is None:
        return False
    cout = quant.q.shape[0]
    w_scale = np.broadcast_to(np.asarray(quant.scale, np.float64).reshape(-1), (cout,))
    integer = integer_epilogue(n, n.attrs["xq"], w_scale)
    return integer is not None and integer[0] == "requant"


def fuse_dw_pw(g: Graph) -> int:
    """Merge each depthwise 3x3 ``ConvQ8`` and the 1x1 ``ConvQ8`` that alone reads it into one
    ``ConvQ8DwPw`` node (see the module docstring); returns how many were merged."""
    users = g.consumers()
    for n in g.nodes:
        if n.fused.get("residual"):
            users.setdefault(n.fused["residual"], []).append(n)
    merged: dict[str, Node] = {}  # the 1x1 conv's name -> its fused node
    dropped: set[str] = set()
    for dw in g.nodes:
        if not _depthwise_3x3(g, dw) or not _requant_only(g, dw, residual_ok=False):
            continue
        t = dw.outputs[0]
        readers = users.get(t, [])
        if len(readers) != 1 or t in g.outputs:
            continue
        pw = readers[0]
        if not _pointwise(pw) or pw.inputs[0] != t or pw.fused.get("residual") == t:
            continue
        if not _requant_only(g, pw, residual_ok=True):
            continue
        node = Node(OP, f"{dw.name}+{pw.name}", [dw.inputs[0]], list(pw.outputs), {"dw": dw, "pw": pw})
        node.fused = {k: v for k, v in pw.fused.items() if k in ("residual", "res_q8")}
        merged[pw.name] = node
        dropped.add(dw.name)
    g.nodes = [merged.get(n.name, n) for n in g.nodes if n.name not in dropped]
    for node in merged.values():  # the depthwise outputs are never stored
        del g.values[node.attrs["dw"].outputs[0]]
    return len(merged)


@lowering(OP)
def lower_dw_pw_q8(lw: Lowerer, node: Node) -> None:
    dw, pw = node.attrs["dw"], node.attrs["pw"]
    x, y = dw.inputs[0], pw.outputs[0]
    n, cmid, h, w = lw.shape(x)
    _, cout, ho, wo = lw.shape(y)
    stride, (pt, pl) = int(dw.attrs["strides"][0]), dw.attrs["pads"][:2]
    # the depthwise conv: w - zw as float [c][9], the input's zero point folded into the bias
    xq: Stored = dw.attrs["xq"]
    wd, zd, sd = q8_weights(lw, dw)
    assert float_sums_exact(wd, zd), "9 taps of 8-bit values always sum exactly in fp32"
    corrected = (wd.astype(np.int64) - zd).reshape(cmid, 9)
    bias_d = graph_bias(lw, dw, (xq.scale * sd).astype(np.float64)) - int(xq.zero) * corrected.sum(1)
    integer = integer_epilogue(dw, xq, sd)
    assert integer is not None, "fuse_dw_pw only merges convs with the integer epilogue"
    _, mult_d, q_d, _ = integer
    # the 1x1 conv on VNNI, as ops/conv_q8.py lowers it alone
    pq: Stored = pw.attrs["xq"]
    wp, zp, sp = q8_weights(lw, pw)
    mult_p = (pq.scale * sp).astype(np.float64)
    bias_p = graph_bias(lw, pw, mult_p) - int(pq.zero) * (wp.astype(np.int64) - zp).reshape(cout, -1).sum(1)
    oq, epilogue, mult_p, mode = epilogue_of(lw, pw, pq, sp, mult_p, pw.fused["out_q8"])
    assert mode == 1, "fuse_dw_pw only merges convs with the integer epilogue"
    if max(np.abs(bias_d).max(), np.abs(bias_p).max()) >= 1 << 31:
        raise BackendError(f"int8 convs {node.name!r}: a bias does not fit an int32")
    tm = dot_tiles(cout, h * w)["TM"]
    laid, _ = dot_weights(wp, tm)
    res_q8 = node.fused.get("res_q8")
    res = (*addr8(lw, node.fused["residual"]),) if res_q8 is not None else (None, np.int32(0), np.int32(0))
    defines = {
        "TM": tm,
        "NV": 1,
        "DOT": 1,
        "ZW": int(zp != 0),
        "OUT_Q8": 1,
        "RES": 2 if res_q8 else 0,
        "SD": stride,
    }
    kernel = q8_kernel(lw, "conv2d_dwpw_q8dot", defines)
    const = lw.const_buffer
    args = [*addr8(lw, x), np.float32(xq.zero), np.int32(lw.mem.size * lw.itemsize),
            const(corrected.astype(np.float32)), const(bias_d.astype(np.int32)), const(mult_d.astype(np.float32)),
            vec("float4", q_d[1], q_d[2], q_d[3], 0.0), const(laid), np.int32(zp), const(bias_p.astype(np.int32)),
            const(mult_p.astype(np.float32)), *addr8(lw, y), epilogue[2], vec("float4", *oq), *res,
            *map(np.int32, (cmid, cout, h, w, ho, wo, pt, pl))]  # fmt: skip
    flops = 2.0 * n * ho * wo * cmid * (9 + cout)
    nbytes = n * (h * w * cmid + ho * wo * cout * (2 if res_q8 else 1)) + wd.nbytes + wp.nbytes
    # tiles of 16 pixels: of the row of H*W (stride 1), of one output row (stride 2)
    tiles = cdiv(ho * wo, 16) if stride == 1 else ho * cdiv(wo, 16)
    name = f"conv2d_dwpw_q8[k3s{stride},{VNNI}]"
    lw.add(node, name, kernel, args, (tiles, 1, n), flops, float(nbytes), lsize=(1, 1, 1))
