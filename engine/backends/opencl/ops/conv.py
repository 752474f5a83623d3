"""Conv lowering: picks the kernel (1x1 GEMM, depthwise, general direct), lays the weights out the
way that kernel reads them, and binds the fused epilogue (bias, activations, fake-quant, residual).

Tile sizes (TM output channels x 8*NV pixels per work-item) come from the autotune choices when a
tuning run stored some for this device and layer signature, else from a heuristic.
"""

from __future__ import annotations

import numpy as np

from ...base import BackendError
from ..graph import Node
from ..lower import Lowerer, lowering, round_up, vec


def epilogue_args(lw: Lowerer, node: Node) -> list:
    f = node.fused
    a1, a2 = f.get("act1", (0, 0.0, 0.0)), f.get("act2", (0, 0.0, 0.0))
    q1, q2 = f.get("fq1", (1.0, 0.0, 0.0, 0.0)), f.get("fq2", (1.0, 0.0, 0.0, 0.0))
    acts = vec("int4", a1[0], a2[0], int("fq1" in f), int("fq2" in f))
    ap = vec("float4", a1[1], a1[2], a2[1], a2[2])
    q = vec("float8", *q1, *q2)
    if f.get("residual"):
        rbuf, roff, rbs = lw.addr(f["residual"])
        return [acts, ap, q, rbuf, roff, rbs]
    return [acts, ap, q, None, np.int32(0), np.int32(0)]


def default_tiles(kind: str, cout_g: int, width: int) -> dict[str, int]:
    """Measured on PoCL (AVX2): 8 channels x 8 pixels is the best 1x1 tile (16 ymm registers:
    8 accumulators + loads), depthwise likes 16 pixels per row when the row is wide enough."""
    if kind == "dw":
        return {"NV": 2 if width > 24 else 1, "ROWS": 1}
    if kind == "dw_s1":
        return {"NV": 2 if width > 24 else 1, "ROWS": 2}
    return {"TM": 8 if cout_g > 4 else 4, "NV": 1}


LMEM_TILES = [{"LMEM": 1, "TM": 4, "BM": 32, "BN": 64, "BK": 16}, {"LMEM": 1, "TM": 8, "BM": 64, "BN": 64, "BK": 16}]


def tile_lsize(t: dict[str, int], ndim: int) -> tuple[int, ...] | None:
    """The work-group a tile choice requires (the local-memory GEMM's is fixed), or None."""
    if t.get("LMEM"):
        return (t["BN"] // 8, t["BM"] // t["TM"], 1)
    if "WG" in t:
        return (t["WG"],) + (1,) * (ndim - 1)
    return None


def candidates(kind: str) -> list[dict[str, int]]:
    if kind == "dw":
        return [{"NV": 1, "ROWS": 1}, {"NV": 2, "ROWS": 1}, {"NV": 4, "ROWS": 1}]
    if kind == "dw_s1":
        return [{"NV": nv, "ROWS": rows} for nv in (1, 2) for rows in (1, 2, 4)]
    blocked = [{"TM": tm, "NV": nv} for tm in (4, 6, 8) for nv in (1, 2, 4) if tm * nv <= 16]
    return blocked + (LMEM_TILES if kind == "1x1" else [])


@lowering("Conv")
def lower_conv(lw: Lowerer, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    n, cin, h, w = lw.shape(x)
    _, cout, ho, wo = lw.shape(y)
    weight = lw.g.const(node.inputs[1]).astype(np.float32)
    bias = (
        lw.g.const(node.inputs[2]).astype(np.float32)
        if len(node.inputs) > 2 and node.inputs[2]
        else np.zeros(cout, np.float32)
    )
    groups = int(node.attrs.get("group", 1))
    kh, kw = node.attrs["kernel_shape"]
    (sy, sx), pads, (dy, dx) = node.attrs["strides"], node.attrs["pads"], node.attrs["dilations"]
    cin_g, cout_g = cin // groups, cout // groups
    if sx > 2:
        raise BackendError(f"Conv node {node.name!r}: x stride {sx} > 2 is not supported")
    xbuf, xoff, xbs = lw.addr(x)
    ybuf, yoff, ybs = lw.addr(y)
    bias_buf = lw.const_buffer(bias)
    epi = epilogue_args(lw, node)
    flops = 2.0 * n * cout * ho * wo * cin_g * kh * kw
    nbytes = float(lw.itemsize * (n * cin * h * w + n * cout * ho * wo) + 4 * weight.size)
    if groups == cin == cout and cin_g == 1:
        # stride 1 without dilation can compute several output rows per work-item (_rows variant)
        kind, sig_w = ("dw_s1" if sy == sx == dy == dx == 1 and kw <= 9 else "dw"), wo
    elif kh == kw == 1 and sy == sx == 1 and not any(pads) and groups == 1:
        kind, sig_w = "1x1", ho * wo
    else:
        kind, sig_w = "general", wo
    signature = f"{kind}:{n}x{cin}x{h}x{w}->{cout}x{ho}x{wo}:k{kh}x{kw}s{sy}{sx}g{groups}"
    tiles = lw.choices.get(signature)
    if tiles is None and kind == "1x1" and lw.is_gpu:
        tiles = LMEM_TILES[0]  # GPUs want the local-memory tiles; CPUs the register-blocked kernel
    tiles = tiles or default_tiles(kind, cout_g, sig_w)
    weight_cache: dict[int, object] = {}

    def build(t: dict[str, int]) -> tuple:
        if kind.startswith("dw"):
            wbuf = weight_cache.setdefault(0, lw.const_buffer(weight.reshape(cout, kh * kw)))
            rows = t.get("ROWS", 1)
            defs = {"NV": t["NV"], "KH": kh, "KW": kw, "SX": sx, "DY": dy, "DX": dx, "ROWS": rows}
            k = lw.kernel("conv2d_dw", "conv2d_dw_rows" if rows > 1 else "conv2d_dw", defs)
            args = [
                xbuf,
                xoff,
                xbs,
                wbuf,
                bias_buf,
                ybuf,
                yoff,
                ybs,
                *map(np.int32, (cout, h, w, ho, wo, sy, pads[0], pads[1])),
                *epi,
            ]
            return k, args, (-(-wo // (8 * t["NV"])), -(-ho // rows), n * cout), f"conv2d_dw[k{kh}s{sx}]"
        tm = t["TM"]
        if t.get("LMEM"):  # local-memory tiled GEMM (GPUs): plain [K][co_pad] weights
            co_pad = round_up(cout, t["BM"])
            key = -t["BM"]
            if key not in weight_cache:
                plain = np.zeros((cin, co_pad), np.float32)
                plain[:, :cout] = weight.reshape(cout, cin).T
                weight_cache[key] = lw.const_buffer(plain)
            defs = {"TM": tm, "BM": t["BM"], "BN": t["BN"], "BK": t["BK"]}
            k = lw.kernel("conv2d_1x1_lmem", "conv2d_1x1_lmem", defs)
            args = [xbuf, xoff, xbs, weight_cache[key], bias_buf, np.int32(co_pad), ybuf, yoff, ybs,
                    np.int32(cin), np.int32(cout), np.int32(ho * wo), *epi]  # fmt: skip
            lx, ly = t["BN"] // 8, t["BM"] // tm
            gsize = (-(-(ho * wo) // t["BN"]) * lx, -(-cout // t["BM"]) * ly, n)
            return k, args, gsize, "conv2d_1x1_lmem"
        co_pad = round_up(cout_g, tm)
        if tm not in weight_cache:
            # [group][co block][ci][ky][kx][TM]: a work-item's weights are one contiguous run
            # (strided TM-slices of a [.., co] layout overflowed L1 with mostly unused lines).
            padded = np.zeros((groups, co_pad, cin_g, kh, kw), np.float32)
            padded[:, :cout_g] = weight.reshape(groups, cout_g, cin_g, kh, kw)
            blocked = padded.reshape(groups, co_pad // tm, tm, cin_g, kh, kw).transpose(0, 1, 3, 4, 5, 2)
            weight_cache[tm] = lw.const_buffer(np.ascontiguousarray(blocked))
        wbuf = weight_cache[tm]
        if kind == "1x1":
            k = lw.kernel("conv2d_1x1", "conv2d_1x1", {"TM": tm, "NV": t["NV"]})
            args = [
                xbuf,
                xoff,
                xbs,
                wbuf,
                bias_buf,
                np.int32(co_pad),
                ybuf,
                yoff,
                ybs,
                np.int32(cin),
                np.int32(cout),
                np.int32(ho * wo),
                *epi,
            ]
            return k, args, (-(-(ho * wo) // (8 * t["NV"])), -(-cout // tm), n), "conv2d_1x1"
        defs = {"TM": tm, "NV": t["NV"], "KH": kh, "KW": kw, "SX": sx, "DY": dy, "DX": dx}
        k = lw.kernel("conv2d", "conv2d", defs)
        args = [
            xbuf,
            xoff,
            xbs,
            wbuf,
            bias_buf,
            np.int32(co_pad),
            ybuf,
            yoff,
            ybs,
            *map(np.int32, (cin_g, cout_g, groups, h, w, ho, wo, sy, pads[0], pads[1])),
            *epi,
        ]
        return k, args, (-(-wo // (8 * t["NV"])), ho, n * groups * (-(-cout_g // tm))), f"conv2d[k{kh}s{sx}]"

    k, args, gsize, name = build(tiles)
    lw.add(
        node,
        name,
        k,
        args,
        gsize,
        flops,
        nbytes,
        lsize=tile_lsize(tiles, len(gsize)),
        tune={"signature": signature, "candidates": candidates(kind), "build": build, "current": tiles},
    )
