"""Lowering of the int8 ops that ``int8.plan_int8`` places: ``ConvQ8`` (kernels/conv2d_q8.cl) and the
8-bit storage conversions ``Quantize8`` / ``Dequant8`` (kernels/quant.cl).

8-bit tensors live in the same pool as float ones; a kernel addresses them in bytes (an 8-bit
tensor's pool offset, counted in float elements, times the element size). Weights are laid out
blocked like conv2d.cl's ([group][co block][ci][ky][kx][TM]) as char: int8 weights as they are,
uint8 ones shifted by -128 with their zero point, so that every value fits a char.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyopencl as cl

from yaguar.kernels.opcodes import ACTIVATIONS

from ...base import BackendError
from ..graph import Node
from ..int8 import Stored
from ..intmath import cdiv, round_up
from ..lower import Built, Lowerer, Tile, Tunable, lowering, vec
from .conv import candidates, default_tiles, tile_lsize

CHAR4 = "char4"  # the kernel variant: packed 8-bit loads, int32 multiply-adds (any OpenCL device)
F32ACC = "f32acc"  # 8-bit loads widened to float, exact fp32 sums (CPU devices: conv2d_q8.cl, FACC)
VNNI = "vnni"  # 1x1 on AVX-512 VNNI: vpdpbusd, int32 sums (PoCL on such a CPU: conv2d_q8.cl, DOT)
EXACT_F32 = 1 << 24  # every integer below it is a float32


def addr8(lw: Lowerer, t: str) -> tuple[cl.Buffer, np.int32, np.int32]:
    """(pool, byte offset, batch stride in bytes) of an 8-bit tensor."""
    off, bstride = lw.mem.address(t)
    return lw.pool, np.int32(off * lw.itemsize), np.int32(bstride)


# kernels/conv2d_q8.cl's entry points, by the ENTRY define that keeps a build to one of them
ENTRIES = {
    "conv2d_q8": 1,
    "conv2d_1x1_q8": 2,
    "conv2d_dw_q8": 3,
    "conv2d_1x1_q8dot": 4,
    "conv2d_dwpw_q8dot": 5,
}


def q8_kernel(lw: Lowerer, entry: str, defines: dict[str, int]) -> cl.Kernel:
    """Kernel ``entry`` of conv2d_q8.cl, built alone: PoCL compiles every kernel of a program when its
    binary is read for the disk cache, so one entry per build is one compile instead of four."""
    return lw.kernel("conv2d_q8", entry, {**defines, "ENTRY": ENTRIES[entry]})


def q8_weights(lw: Lowerer, node: Node) -> tuple[np.ndarray, int, np.ndarray]:
    """(weights as char [co, ci, kh, kw], their zero point as stored, per-channel weight scale)."""
    quant = lw.g.values[node.inputs[1]].quant
    assert quant is not None
    cout = quant.q.shape[0]
    q = quant.q.astype(np.int32)
    zero = int(np.asarray(quant.zero).reshape(-1)[0])
    if quant.q.dtype == np.uint8:
        q, zero = q - 128, zero - 128
    scale = np.broadcast_to(np.asarray(quant.scale, np.float64).reshape(-1), (cout,))
    return q.astype(np.int8), zero, scale


def float_sums_exact(weights: np.ndarray, zero: int) -> bool:
    """Whether fp32 sums of this conv are exact: every partial sum of products of an 8-bit input
    (at most 255 from its zero point, or 0..255 with the zero point folded out) and a corrected
    weight stays below 2^24 when 255 * (the largest sum of |w - zw| of one output channel) does."""
    corrected = np.abs(weights.astype(np.int64) - zero).reshape(weights.shape[0], -1)
    return 255 * int(corrected.sum(1).max()) < EXACT_F32


def float_weights(
    weights: np.ndarray, zero: int, bias: np.ndarray, zx: int
) -> tuple[np.ndarray, int, np.ndarray]:
    """The fp32-sum kernels' weights: w - zw as float (exact integers), zero point 0; with ``zx``
    (the 1x1 kernel, no padding) the input's zero point folded into the bias:
    sum (x - zx) w' = sum x w' - zx sum w'."""
    corrected = weights.astype(np.int64) - zero
    return corrected.astype(np.float32), 0, bias - zx * corrected.reshape(len(bias), -1).sum(1)


def dot_weights(weights: np.ndarray, tm: int) -> tuple[np.ndarray, int]:
    """The VNNI 1x1 kernel's weights: [co, ci] char as [co block of tm][ci / 4][tm] int32, each the
    4 chars of channels 4k..4k+3 (byte j: channel 4k + j; ci and co padded with zeros), and the
    padded channel count."""
    cout, cin = weights.shape[:2]
    co_pad, ci_pad = round_up(cout, tm), round_up(cin, 4)
    padded = np.zeros((co_pad, ci_pad), np.int8)
    padded[:cout, :cin] = weights.reshape(cout, cin)
    blocked = padded.reshape(co_pad // tm, tm, ci_pad // 4, 4).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(blocked).view(np.int32).reshape(co_pad // tm, ci_pad // 4, tm), co_pad


def blocked_weights(weights: np.ndarray, groups: int, tm: int) -> tuple[np.ndarray, int]:
    """Weights [co, ci, kh, kw] as [group][co block of tm][ci][ky][kx][tm] (char, or float for the
    fp32-sum kernels), and the padded channel count per group."""
    cout, cin_g, kh, kw = weights.shape
    cout_g = cout // groups
    co_pad = round_up(cout_g, tm)
    padded = np.zeros((groups, co_pad, cin_g, kh, kw), weights.dtype)
    padded[:, :cout_g] = weights.reshape(groups, cout_g, cin_g, kh, kw)
    blocked = padded.reshape(groups, co_pad // tm, tm, cin_g, kh, kw).transpose(0, 1, 3, 4, 5, 2)
    return np.ascontiguousarray(blocked), co_pad


def epilogue_args(lw: Lowerer, node: Node) -> list[Any]:
    """The generic epilogue's arguments: activations, fake-quants, the residual (float or 8-bit)."""
    f = node.fused
    res, res_q8 = f.get("residual"), f.get("res_q8")
    a1, a2 = f.get("act1", (0, 0.0, 0.0)), f.get("act2", (0, 0.0, 0.0))
    q1, q2 = f.get("fq1", (1.0, 0.0, 0.0, 0.0)), f.get("fq2", (1.0, 0.0, 0.0, 0.0))
    args: list[Any] = [
        vec("int4", a1[0], a2[0], int("fq1" in f), int("fq2" in f)),
        vec("float4", a1[1], a1[2], a2[1], a2[2]),
        vec("float8", *q1, *q2),
    ]
    if res and res_q8 is not None:
        return [*args, *addr8(lw, res), vec("float2", res_q8.scale, res_q8.zero)]
    if res:
        return [*args, *lw.addr(res), vec("float2", 1.0, 0.0)]
    return [*args, None, np.int32(0), np.int32(0), vec("float2", 1.0, 0.0)]


def epilogue_of(
    lw: Lowerer, node: Node, xq: Stored, w_scale: np.ndarray, mult: np.ndarray, out_q8: Stored | None
) -> tuple[tuple[float, ...], list[Any], np.ndarray, int]:
    """(oq, epilogue arguments, multiplier per channel, mode) of the kernels' epilogue: onnxruntime's
    integer requantisation where it applies (see conv2d_q8.cl), else the generic fp32 one."""
    oq: tuple[float, ...] = (
        (out_q8.scale, out_q8.zero, out_q8.lo, out_q8.hi) if out_q8 else (1.0, 0.0, 0.0, 0.0)
    )
    epilogue = epilogue_args(lw, node)
    integer = integer_epilogue(node, xq, w_scale)
    if integer is None:
        return oq, epilogue, mult, 0
    kind, mult, q_int, oq_int = integer
    epilogue[2] = vec("float8", *q_int)
    return oq_int or oq, epilogue, mult, 1 if kind == "requant" else 2


def graph_bias(lw: Lowerer, node: Node, mult: np.ndarray) -> np.ndarray:
    """The int32 bias of the QDQ graph, recovered from its dequantised constant (zeros without)."""
    if len(node.inputs) > 2 and node.inputs[2]:
        return np.rint(lw.g.const(node.inputs[2]).astype(np.float64) / mult).astype(np.int64)
    return np.zeros(len(mult), np.int64)


def first_tiles(dot: bool, pointwise: bool, cout_g: int, width: int, batch: int, gpu: bool) -> Tile:
    """A conv's tile before any tuned choice: the VNNI kernel's, the float 1x1 GEMM's (measured on
    PoCL, here on 8-bit inputs), or the general kernel's (on a CPU 16 channels x 8 pixels, 16 of
    the 32 AVX-512 registers, like the float kernel's)."""
    if dot:
        return dot_tiles(cout_g, width)
    if pointwise:
        return default_tiles("1x1", cout_g, width, batch)
    if cout_g >= 16 and not gpu:  # (as conv.default_tiles; MobileNetV2's stem: 1.12 -> 0.50 ms)
        return {"TM": 16, "NV": 1}
    return {"TM": 1 if cout_g == 1 else (8 if cout_g > 4 else 4), "NV": 2 if width > 16 else 1}


@lowering("ConvQ8")
def lower_conv_q8(lw: Lowerer, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    n, cin, h, w = lw.shape(x)
    _, cout, ho, wo = lw.shape(y)
    groups = int(node.attrs.get("group", 1))
    kh, kw = node.attrs["kernel_shape"]
    (sy, sx), pads, (dy, dx) = node.attrs["strides"], node.attrs["pads"], node.attrs["dilations"]
    cin_g, cout_g = cin // groups, cout // groups
    flat = kh == kw == 1 and sy == sx == 1 and not any(pads)
    if flat:  # 1x1: one row of H*W pixels
        h, w, ho, wo = 1, h * w, 1, ho * wo
    xq: Stored = node.attrs["xq"]
    weights, zw, w_scale = q8_weights(lw, node)
    mult = (xq.scale * w_scale).astype(np.float64)
    bias = graph_bias(lw, node, mult)
    depthwise = groups == cin == cout and dy == dx == 1
    dot = lw.int8_vnni and flat and groups == 1
    facc = not dot and lw.int8_float_sums and float_sums_exact(weights, zw)
    pointwise = (facc or dot) and flat and groups == 1
    tiles = first_tiles(dot, pointwise, cout_g, wo, n, lw.is_gpu)
    if dot:  # int32 sums of the stored values; the input's zero point folded into the bias
        bias = bias - int(xq.zero) * (weights.astype(np.int64) - zw).reshape(cout, -1).sum(1)
    if facc and not depthwise:
        weights, zw, bias = float_weights(weights, zw, bias, int(xq.zero) if pointwise else 0)
    if np.abs(bias).max(initial=0) >= 1 << 31:
        raise BackendError(f"int8 conv {node.name!r}: its bias does not fit an int32")
    tm, nv = tiles["TM"], tiles["NV"]
    wbuf, co_pad = None, 0  # (the pointwise kernel's layout is made per tile: PointwiseTiles)
    if not pointwise:
        blocked, co_pad = blocked_weights(weights, groups, tm)
        wbuf = lw.const_buffer(blocked)

    out_q8: Stored | None = node.fused.get("out_q8")
    oq, epilogue, mult, mode = epilogue_of(lw, node, xq, w_scale, mult, out_q8)
    res = node.fused.get("residual")
    defines = {"TM": tm, "NV": nv, "KH": kh, "KW": kw, "SX": sx, "DY": dy, "DX": dx, "FACC": int(facc),
               **({"DOT": 1, "ZW": int(zw != 0)} if dot else {}),
               "OUT_Q8": int(out_q8 is not None), "RES": 0 if not res else (2 if "res_q8" in node.fused else 1)}  # fmt: skip
    dims = (cin_g, cout_g, groups, h, w, ho, wo, sy, pads[0], pads[1])
    args = [*addr8(lw, x), np.int32(xq.zero), wbuf, np.int32(zw), lw.const_buffer(bias.astype(np.int32)),
            lw.const_buffer(mult.astype(np.float32)), np.int32(co_pad),
            *(addr8(lw, y) if out_q8 else lw.addr(y)), vec("float4", *oq), *map(np.int32, dims), *epilogue,
            np.int32(mode)]  # fmt: skip
    if pointwise:
        add_pointwise(lw, node, weights, defines, args, tiles)
        return
    if depthwise:  # whole rows per work-item, weights in registers
        rows = 4 if ho >= 16 or lw.int8_float_sums else 2  # (4 measured faster on PoCL for 7x7 and 14x14 too)
        kernel = q8_kernel(lw, "conv2d_dw_q8", {**defines, "SY": sy, "ROWS": rows})
        gsize: tuple[int, ...] = (cdiv(ho, rows), cout, n)
    else:
        kernel = q8_kernel(lw, "conv2d_q8", defines)
        gsize = (cdiv(wo, 8 * nv), ho * cdiv(cout_g, tm), n * groups)
    flops = 2.0 * n * cout * ho * wo * cin_g * kh * kw
    nbytes = n * (cin * h * w + (1 if out_q8 else lw.itemsize) * cout * ho * wo) + weights.nbytes
    name = f"conv2d{'_dw' if depthwise else ''}_q8[k{kh}s{sx},{F32ACC if facc else CHAR4}]"
    lw.add(node, name, kernel, args, gsize, flops, float(nbytes), lsize=lw.local_size(gsize), tune=None)


def dot_tiles(cout: int, width: int) -> Tile:
    """The VNNI 1x1 kernel's tile without a tuned choice: 16 channels x 16 pixels, or 8 channels
    where 16 would pad a narrow layer (24 channels). The tile search on PoCL (Zen 4, MobileNetV2 at
    batch 1 and 2, 01:35 UTC) picked 16 x 16 for 32 of its 40 layer shapes and 8 channels for all
    four of 24 channels."""
    return {"TM": 8 if cout < 64 and cout % 16 else 16, "NV": 1}


def add_pointwise(
    lw: Lowerer, node: Node, weights: np.ndarray, defines: dict[str, int], args: list[Any], tiles: Tile
) -> None:
    """The 1x1 fp32-sum or VNNI kernel's launch, its tile from the autotune cache or ``tiles``,
    tunable."""
    n, cin, h, w = lw.shape(node.inputs[0])
    cout = lw.shape(node.outputs[0])[1]
    dot = bool(defines.get("DOT"))
    signature = f"q8{'dot' if dot else ''}_1x1:{n}x{cin}x{h * w}->{cout}"  # (its key in the autotune cache)
    tiles = lw.choices.get(signature, tiles)
    tunable = PointwiseTiles(lw, weights, defines, args, (n, cout, h * w))
    kernel, args, gsize, _ = tunable.build(tiles)
    flops = 2.0 * n * cout * h * w * cin
    nbytes = n * (cin + (1 if defines["OUT_Q8"] else lw.itemsize) * cout) * h * w + weights.nbytes
    tune = Tunable(signature, DOT_TILES if dot else POINTWISE_TILES, tunable.build, tiles, tunable.keep_only)
    lw.add(node, f"conv2d_q8[k1s1,{VNNI if dot else F32ACC}]", kernel, args, gsize, flops, float(nbytes),
           lsize=tile_lsize(tiles, 3), tune=tune)  # fmt: skip


POINTWISE_TILES = [t for t in candidates("1x1") if not t.get("LMEM")]  # the tile search's candidates
DOT_TILES = [{"TM": tm, "NV": nv} for tm, nv in ((8, 1), (8, 2), (16, 1), (24, 1))]


class PointwiseTiles:
    """The 1x1 fp32-sum (or, with DOT, VNNI) kernel of one layer, built for a tile (the
    autotuner's ``build``); the weights laid out once per TM."""

    def __init__(
        self,
        lw: Lowerer,
        weights: np.ndarray,
        defines: dict[str, int],
        args: list[Any],
        dims: tuple[int, int, int],
    ) -> None:
        self.lw, self.weights, self.defines, self.args, self.dims = lw, weights, defines, args, dims
        self.layouts: dict[int, tuple[cl.Buffer, int]] = {}

    def build(self, t: Tile) -> Built:
        n, cout, hw = self.dims
        tm, nv, inner = t["TM"], t["NV"], t.get("CO_INNER", 0)
        dot = bool(self.defines.get("DOT"))
        if tm not in self.layouts:
            laid, co_pad = dot_weights(self.weights, tm) if dot else blocked_weights(self.weights, 1, tm)
            self.layouts[tm] = (self.lw.const_buffer(laid), co_pad)
        buf, co_pad = self.layouts[tm]
        args = list(self.args)
        args[4], args[8] = buf, np.int32(co_pad)  # the weights and their padded channel count
        defines = {**self.defines, "TM": tm, "NV": nv, "CO_INNER": inner}
        entry = "conv2d_1x1_q8dot" if dot else "conv2d_1x1_q8"
        kernel = q8_kernel(self.lw, entry, defines)
        pixels = 16 * nv if dot else 8 * nv
        return kernel, args, (cdiv(hw, pixels), 1 if inner else cdiv(cout, tm), n), entry

    def keep_only(self, t: Tile) -> None:
        for tm in [k for k in self.layouts if k != t["TM"]]:
            self.lw.release(self.layouts.pop(tm)[0])


def first_requant(
    node: Node, xq: Stored, w_scale: np.ndarray, grid: Stored
) -> tuple[np.ndarray, float, float]:
    """QLinearConv's requantisation to ``grid``: the multiplier sx*sw/s per channel (in float32, as
    onnxruntime computes it) and the bounds of the rounded value, with Relu/Clip (act 1) folded in
    (rounding is monotonic, so clamping before or after it is the same)."""
    f32 = np.float32
    mult = (f32(xq.scale) * w_scale.astype(f32)) / f32(grid.scale)
    lo, hi = grid.lo, grid.hi
    act = node.fused.get("act1", (0, 0.0, 0.0))
    if act[0]:
        a, b = (0.0, np.inf) if act[0] == ACTIVATIONS["Relu"] else (act[1], act[2])
        lo = max(lo, grid.zero + float(np.rint(f32(a) / f32(grid.scale))))
        if np.isfinite(b) and b < 3e38:
            hi = min(hi, grid.zero + float(np.rint(f32(b) / f32(grid.scale))))
    return mult, lo, hi


def integer_epilogue(
    node: Node, xq: Stored, w_scale: np.ndarray
) -> tuple[str, np.ndarray, list[float], tuple[float, ...]] | None:
    """(mode, multiplier per channel, q, oq) when the conv's epilogue starts with Relu or Clip
    (or none) and a requantisation: mode 1 (requant) when that is all (optionally + an 8-bit residual,
    requantised again: onnxruntime's QLinearConv + QLinearAdd), mode 2 (requant_first) when fp32 work follows
    (SiLU, ...). None otherwise (the generic fp32 epilogue)."""
    f = node.fused
    out: Stored | None = f.get("out_q8")
    if f.get("act1", (0,))[0] not in (0, ACTIVATIONS["Relu"], ACTIVATIONS["Clip"]):
        return None
    tail = f.get("act2", (0,))[0] or f.get("residual") or "fq2" in f
    if out is not None and not tail and "fq1" not in f:  # requantise, done
        mult, lo, hi = first_requant(node, xq, w_scale, out)
        return "requant", mult, [out.scale, out.zero, lo, hi, 0.0, 0.0, 0.0, 0.0], (1.0, 0.0, lo, hi)
    if "fq1" not in f:
        return None
    first = Stored.of(f["fq1"])
    if out is not None and f.get("res_q8") and not f.get("act2", (0,))[0] and "fq2" not in f:
        res: Stored = f["res_q8"]  # + an 8-bit residual, requantised again (QLinearAdd)
        mult, lo, hi = first_requant(node, xq, w_scale, first)
        f32 = np.float32
        r_a, r_b = f32(first.scale) / f32(out.scale), f32(res.scale) / f32(out.scale)
        fixed = f32(out.zero) - (r_a * f32(first.zero) + r_b * f32(res.zero))
        q = [first.scale, first.zero, lo, hi, float(r_a), float(r_b), float(fixed), 0.0]
        return "requant", mult, q, (1.0, 0.0, out.lo, out.hi)
    # fp32 work follows: the first requantisation in the graph's own zero point (it is dequantised)
    s, z, lo_g, hi_g = f["fq1"]
    mult, lo, hi = first_requant(node, xq, w_scale, Stored(s, z, lo_g, hi_g))
    q2 = f.get("fq2", (1.0, 0.0, 0.0, 0.0))
    return "requant_first", mult, [s, z, lo, hi, *q2], ()


def _elementwise_q8(lw: Lowerer, node: Node, entry: str) -> None:
    """Quantize8 (float -> 8 bits) and Dequant8 (8 bits -> float), one pass over each batch item."""
    x, y = node.inputs[0], node.outputs[0]
    q: Stored = node.attrs["q"]
    shape = lw.shape(y)
    batch = shape[0] if shape else 1
    inner = int(np.prod(shape[1:])) if shape else 1
    if entry == "quantize8":
        args = [np.int32(inner), *map(np.float32, (q.scale, q.zero, q.lo, q.hi)), *lw.addr(x), *addr8(lw, y)]
    else:
        args = [np.int32(inner), *map(np.float32, (q.scale, q.zero)), *addr8(lw, x), *lw.addr(y)]
    total = batch * inner
    lw.add(node, entry, lw.kernel("quant", entry), args, (cdiv(inner, 8), batch), 2.0 * total,
           float((1 + lw.itemsize) * total))  # fmt: skip


@lowering("Quantize8")
def lower_quantize8(lw: Lowerer, node: Node) -> None:
    _elementwise_q8(lw, node, "quantize8")


@lowering("Dequant8")
def lower_dequant8(lw: Lowerer, node: Node) -> None:
    _elementwise_q8(lw, node, "dequant8")
