"""Conv lowering: picks the kernel (1x1 GEMM, depthwise, general direct), lays the weights out the
way that kernel reads them, and binds the fused epilogue (bias, activations, fake-quant, residual).

Tile sizes (TM output channels x 8*NV pixels per work-item) come from the autotune choices when a
tuning run stored some for this device and layer signature, else from a heuristic.
"""

from __future__ import annotations

import numpy as np
import pyopencl as cl

from ...base import BackendError
from ..graph import Node
from ..intmath import cdiv, round_up
from ..lower import Built, Lowerer, Tile, Tunable, lowering, vec
from . import winograd


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


def epilogue_defines(node: Node) -> dict[str, int]:
    """The epilogue's shape as build defines (common.cl's EPI_STATIC): which activations, whether
    fake-quant and a residual follow. Its numbers (activation parameters, scales) stay arguments."""
    f = node.fused
    return {
        "EPI_STATIC": 1,
        "EPI_ACT1": f.get("act1", (0,))[0],
        "EPI_ACT2": f.get("act2", (0,))[0],
        "EPI_FQ1": int("fq1" in f),
        "EPI_FQ2": int("fq2" in f),
        "EPI_RES": int(bool(f.get("residual"))),
    }


def default_tiles(kind: str, cout_g: int, width: int, batch: int = 1, gpu: bool = False) -> dict[str, int]:
    """Measured on PoCL (AVX2, FMA): a 1x1 work-item keeps its 24-pixel column of X in L1 and walks
    every output-channel block (CO_INNER) with 4 x 3 float8 accumulators (12 of the 16 ymm
    registers), unless that leaves a single work-group of 8 (a 13x13 map at batch 1: one core
    would do the whole layer), where the channel blocks are spread over the range instead;
    depthwise without dilation computes 8 whole output rows per work-item (_full: 8 independent
    SiLU chains per chunk instead of 4; YOLOX-nano batch 8 12.4 -> 11.9 ms per image); a general conv
    (the YOLOX stem: 3x3, 12 -> 16 channels) 16 channels x 8 pixels on a CPU, 16 accumulators of
    PoCL's 32 AVX-512 registers (YOLOX-nano's stem 2.22 -> 2.04 CPU ms, 8 channels x 8 pixels before)."""
    if kind == "dw_full":
        return {"FULL": 1, "ROWS": 8}
    if kind == "dw":
        return {"NV": 2 if width > 24 else 1, "ROWS": 1}
    if kind == "1x1":
        if cout_g >= 64 and width > 16:
            # channel blocks spread over the range: more work-groups to share between cores
            # (chosen by the tile search on PoCL for every such layer of YOLOX-nano, x1.2 overall)
            return {"TM": 8, "NV": 2}
        nv = 3 if width > 16 else 1
        if batch * cdiv(width, 8 * nv) <= 8:
            return {"TM": 4, "NV": nv}
        return {"TM": 4, "NV": nv, "CO_INNER": 1}
    if cout_g >= 16 and not gpu:
        return {"TM": 16, "NV": 1}
    return {"TM": 8 if cout_g > 4 else 4, "NV": 1}


LMEM_TILES = [
    {"LMEM": 1, "TM": 4, "BM": 32, "BN": 64, "BK": 16},
    {"LMEM": 1, "TM": 8, "BM": 64, "BN": 64, "BK": 16},
]


def tile_lsize(t: dict[str, int], ndim: int) -> tuple[int, ...] | None:
    """The work-group a tile choice requires (the local-memory GEMM's is fixed), or None."""
    if t.get("LMEM"):
        return (t["BN"] // 8, t["BM"] // t["TM"], 1)
    if "WG" in t:
        return (t["WG"],) + (1,) * (ndim - 1)
    return None


def candidates(kind: str) -> list[dict[str, int]]:
    per_pixel_dw = [{"NV": 1, "ROWS": 1}, {"NV": 2, "ROWS": 1}, {"NV": 4, "ROWS": 1}]
    if kind == "dw":
        return per_pixel_dw
    if kind == "dw_full":
        return [{"FULL": 1, "ROWS": rows} for rows in (2, 4, 6, 8)] + per_pixel_dw
    blocked = [{"TM": tm, "NV": nv} for tm in (4, 6, 8, 16) for nv in (1, 2, 4) if tm * nv <= 16]
    if kind != "1x1":
        return blocked
    co_inner = [{"TM": 8, "NV": 1, "CO_INNER": 1}, {"TM": 4, "NV": 2, "CO_INNER": 1},
                {"TM": 4, "NV": 3, "CO_INNER": 1}]  # fmt: skip
    return blocked + co_inner + LMEM_TILES


class ConvLayer:
    """One Conv node's shapes, buffers and fused epilogue; ``build(tiles)`` binds a kernel variant
    (called again by the autotuner for each candidate)."""

    def __init__(self, lw: Lowerer, node: Node) -> None:
        self.lw = lw
        x, y = node.inputs[0], node.outputs[0]
        self.n, self.cin, self.h, self.w = lw.shape(x)
        _, self.cout, self.ho, self.wo = lw.shape(y)
        self.weight = lw.g.const(node.inputs[1]).astype(np.float32)
        has_bias = len(node.inputs) > 2 and node.inputs[2]
        bias = lw.g.const(node.inputs[2]).astype(np.float32) if has_bias else np.zeros(self.cout, np.float32)
        self.groups = int(node.attrs.get("group", 1))
        self.kh, self.kw = node.attrs["kernel_shape"]
        (self.sy, self.sx), self.pads, (self.dy, self.dx) = (
            node.attrs["strides"], node.attrs["pads"], node.attrs["dilations"])  # fmt: skip
        self.cin_g, self.cout_g = self.cin // self.groups, self.cout // self.groups
        if self.sx > 2:
            raise BackendError(f"Conv node {node.name!r}: x stride {self.sx} > 2 is not supported")
        self.x_args = list(lw.addr(x))
        self.y_args = list(lw.addr(y))
        self.bias_buf = lw.const_buffer(bias)
        self.epi = epilogue_args(lw, node)
        self.epi_defines = epilogue_defines(node)
        self.weights: dict[int, cl.Buffer] = {}  # by layout (weight_key): built once each
        if self.groups == self.cin == self.cout and self.cin_g == 1:
            # without dilation a work-item can compute whole output rows (the _full variant)
            self.kind, self.width = ("dw_full" if self.dy == self.dx == 1 else "dw"), self.wo
        elif self.kh == self.kw == 1 and self.sy == self.sx == 1 and not any(self.pads) and self.groups == 1:
            self.kind, self.width = "1x1", self.ho * self.wo
        else:
            self.kind, self.width = "general", self.wo
        self.signature = (f"{self.kind}:{self.n}x{self.cin}x{self.h}x{self.w}->{self.cout}x{self.ho}x{self.wo}"
                          f":k{self.kh}x{self.kw}s{self.sy}{self.sx}g{self.groups}")  # fmt: skip

    def kernel(self, file: str, entry: str, defines: dict[str, int]) -> cl.Kernel:
        return self.lw.kernel(file, entry, {**defines, **self.epi_defines})

    def weight_key(self, t: Tile) -> int:
        """Which weight layout tile ``t`` reads: one for depthwise, one per BM for the local-memory
        GEMM, one per TM for the blocked kernels."""
        if self.kind.startswith("dw"):
            return 0
        return -t["BM"] if t.get("LMEM") else t["TM"]

    def keep_only(self, t: Tile) -> None:
        """Free every weight layout but the one tile ``t`` reads (after autotuning chose ``t``)."""
        keep = self.weight_key(t)
        for key in [k for k in self.weights if k != keep]:
            self.lw.release(self.weights.pop(key))

    def build(self, t: Tile) -> Built:
        if self.kind.startswith("dw"):
            return self._depthwise(t)
        if t.get("LMEM"):
            return self._local_memory_gemm(t)
        return self._blocked(t)

    def _depthwise(self, t: Tile) -> Built:
        if 0 not in self.weights:
            self.weights[0] = self.lw.const_buffer(self.weight.reshape(self.cout, self.kh * self.kw))
        wbuf = self.weights[0]
        rows = t.get("ROWS", 1)
        defs = {"NV": t.get("NV", 1), "KH": self.kh, "KW": self.kw, "SX": self.sx, "DY": self.dy,
                "DX": self.dx, "ROWS": rows}  # fmt: skip
        dims = (self.cout, self.h, self.w, self.ho, self.wo, self.sy, self.pads[0], self.pads[1])
        args = [*self.x_args, wbuf, self.bias_buf, *self.y_args, *map(np.int32, dims), *self.epi]
        name = f"conv2d_dw[k{self.kh}s{self.sx}]"
        if t.get("FULL"):  # whole rows per work-item (no dilation)
            k = self.kernel("conv2d_dw", "conv2d_dw_full", {**defs, "SY": self.sy})
            return k, args, (cdiv(self.ho, rows), self.cout, self.n), name
        k = self.kernel("conv2d_dw", "conv2d_dw", defs)
        gsize = (cdiv(self.wo, 8 * t["NV"]), self.ho, self.n * self.cout)
        return k, args, gsize, name

    def _local_memory_gemm(self, t: Tile) -> Built:
        """1x1 as a GEMM tiled through local memory (GPUs): plain [K][co_pad] weights."""
        co_pad = round_up(self.cout, t["BM"])
        if -t["BM"] not in self.weights:
            plain = np.zeros((self.cin, co_pad), np.float32)
            plain[:, : self.cout] = self.weight.reshape(self.cout, self.cin).T
            self.weights[-t["BM"]] = self.lw.const_buffer(plain)
        defs = {"TM": t["TM"], "BM": t["BM"], "BN": t["BN"], "BK": t["BK"]}
        k = self.kernel("conv2d_1x1_lmem", "conv2d_1x1_lmem", defs)
        hw = self.ho * self.wo
        args = [*self.x_args, self.weights[-t["BM"]], self.bias_buf, np.int32(co_pad), *self.y_args,
                np.int32(self.cin), np.int32(self.cout), np.int32(hw), *self.epi]  # fmt: skip
        lx, ly = t["BN"] // 8, t["BM"] // t["TM"]
        return k, args, (cdiv(hw, t["BN"]) * lx, cdiv(self.cout, t["BM"]) * ly, self.n), "conv2d_1x1_lmem"

    def _blocked(self, t: Tile) -> Built:
        tm, g = t["TM"], self.groups
        co_pad = round_up(self.cout_g, tm)
        if tm not in self.weights:
            # [group][co block][ci][ky][kx][TM]: a work-item's weights are one contiguous run
            # (strided TM-slices of a [.., co] layout overflowed L1 with mostly unused lines).
            padded = np.zeros((g, co_pad, self.cin_g, self.kh, self.kw), np.float32)
            padded[:, : self.cout_g] = self.weight.reshape(g, self.cout_g, self.cin_g, self.kh, self.kw)
            blocked = padded.reshape(g, co_pad // tm, tm, self.cin_g, self.kh, self.kw).transpose(
                0, 1, 3, 4, 5, 2
            )
            self.weights[tm] = self.lw.const_buffer(np.ascontiguousarray(blocked))
        head = [*self.x_args, self.weights[tm], self.bias_buf, np.int32(co_pad), *self.y_args]
        if self.kind == "1x1":
            inner = t.get("CO_INNER", 0)
            k = self.kernel("conv2d_1x1", "conv2d_1x1", {"TM": tm, "NV": t["NV"], "CO_INNER": inner})
            hw = self.ho * self.wo
            args = [*head, np.int32(self.cin), np.int32(self.cout), np.int32(hw), *self.epi]
            blocks = 1 if inner else cdiv(self.cout, tm)
            return k, args, (cdiv(hw, 8 * t["NV"]), blocks, self.n), "conv2d_1x1"
        defs = {
            "TM": tm,
            "NV": t["NV"],
            "KH": self.kh,
            "KW": self.kw,
            "SX": self.sx,
            "DY": self.dy,
            "DX": self.dx,
        }
        k = self.kernel("conv2d", "conv2d", defs)
        dims = (
            self.cin_g,
            self.cout_g,
            g,
            self.h,
            self.w,
            self.ho,
            self.wo,
            self.sy,
            self.pads[0],
            self.pads[1],
        )
        args = [*head, *map(np.int32, dims), *self.epi]
        gsize = (cdiv(self.wo, 8 * t["NV"]), self.ho * cdiv(self.cout_g, tm), self.n * g)
        return k, args, gsize, f"conv2d[k{self.kh}s{self.sx}]"


def lower_winograd(lw: Lowerer, node: Node, layer: ConvLayer) -> None:
    wino = winograd.WinogradConv(lw, layer)
    nbytes = float(lw.itemsize * layer.n * (layer.cin * layer.h * layer.w + layer.cout * layer.ho * layer.wo))
    for (k, args, gsize, name), fl in zip(wino.launches(), winograd.flops(layer), strict=True):
        lw.add(node, name, k, args, gsize, fl, nbytes)


@lowering("Conv")
def lower_conv(lw: Lowerer, node: Node) -> None:
    layer = ConvLayer(lw, node)
    tiles = lw.choices.get(layer.signature)
    default = tiles is None and lw.winograd_default and winograd.default_on(layer, lw.is_gpu)
    if winograd.eligible(layer) and (tiles == winograd.WINO or default):
        lower_winograd(lw, node, layer)
        return
    if tiles and tiles.get("WINO"):  # stored for a layer it cannot run (a hand-edited cache)
        tiles = None
    if tiles is None and lw.is_gpu:
        # GPUs want many light work-items: the local-memory GEMM for 1x1, a pixel strip per
        # work-item for depthwise (the CPU kernels loop over whole rows / all channel blocks)
        if layer.kind == "1x1":
            tiles = LMEM_TILES[0]
        elif layer.kind == "dw_full":
            tiles = default_tiles("dw", layer.cout_g, layer.width)
    tiles = tiles or default_tiles(layer.kind, layer.cout_g, layer.width, layer.n, lw.is_gpu)
    k, args, gsize, name = layer.build(tiles)
    flops = 2.0 * layer.n * layer.cout * layer.ho * layer.wo * layer.cin_g * layer.kh * layer.kw
    io = layer.n * (layer.cin * layer.h * layer.w + layer.cout * layer.ho * layer.wo)
    tune = Tunable(layer.signature, candidates(layer.kind), layer.build, tiles, layer.keep_only)
    if winograd.eligible(layer):
        tune.alternative = lambda: winograd.WinogradConv(lw, layer).timed()
        tune.alternative_choice = winograd.WINO
    lw.add(node, name, k, args, gsize, flops, float(lw.itemsize * io + 4 * layer.weight.size),
           lsize=tile_lsize(tiles, len(gsize)), tune=tune)  # fmt: skip
