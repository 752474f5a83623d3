"""Winograd F(2x2,3x3) for dense stride-1 3x3 convs (kernels/winograd.cl): three launches (input
transform, 16 GEMMs over the channels, output transform with the conv's fused epilogue) on two fp32
scratch buffers of the plan.

It is one more choice of the tile search: ``autotune`` times it against the direct kernel's best
tile per layer shape and stores ``{"WINO": 1}`` when it is faster (and the direct tile it found
otherwise). Without a stored choice it runs where ``default_on`` says (measured on PoCL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pyopencl as cl

from ..intmath import cdiv, round_up
from ..lower import Built, Lowerer


class ConvLayer(Protocol):
    """What this module reads of ops/conv.py's ConvLayer (which imports this module)."""

    kind: str
    n: int
    cin: int
    cout: int
    h: int
    w: int
    ho: int
    wo: int
    kh: int
    kw: int
    sy: int
    sx: int
    dy: int
    dx: int
    groups: int
    pads: list[int]
    weight: np.ndarray
    x_args: list[Any]
    y_args: list[Any]
    bias_buf: cl.Buffer
    epi: list[Any]

    def kernel(self, file: str, entry: str, defines: dict[str, int]) -> cl.Kernel: ...


WINO: dict[str, int] = {"WINO": 1}  # the tile-search choice that selects this path
GEMM_TILE = {"TM": 8, "NV": 2}  # wino_gemm's register block (the 1x1 GEMM's default for wide layers)

# G of F(2x2,3x3): U = G g G^T turns a 3x3 filter into the 4x4 transformed domain.
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]], np.float64)


def eligible(layer: ConvLayer) -> bool:
    """Dense 3x3, stride 1, no dilation: what F(2x2,3x3) computes exactly."""
    return (
        layer.kind == "general"
        and layer.groups == 1
        and (layer.kh, layer.kw, layer.sy, layer.sx, layer.dy, layer.dx) == (3, 3, 1, 1, 1, 1)
    )


# Without a stored choice, Winograd runs on CPU devices from this many input and output channels:
# bench/winograd.py on PoCL (2 cores, batch 1, with SiLU) measured direct / Winograd 1.14 (64 ch,
# 80x80), 1.15 (64, 40x40), 1.28 (128, 80x80), 1.35 (128, 40x40) and 0.75 (32 ch, 40x40: slower).
MIN_CHANNELS_CPU = 64


def default_on(layer: ConvLayer, gpu: bool) -> bool:
    """Whether Winograd runs without a stored tile-search choice: on CPU devices for wide layers (as
    measured above); on GPUs only where ``autotune`` timed it faster (not measured on one yet)."""
    return not gpu and min(layer.cin, layer.cout) >= MIN_CHANNELS_CPU


def transformed_weights(weight: np.ndarray, tm: int) -> np.ndarray:
    """U = G g G^T per (co, ci), laid out [e][co block of tm][ci][tm] with co padded to tm."""
    cout, cin = weight.shape[:2]
    u = np.einsum("ai,ocij,bj->aboc", G, weight.astype(np.float64), G)  # [4][4][co][ci]
    co_pad = round_up(cout, tm)
    padded = np.zeros((16, co_pad, cin), np.float32)
    padded[:, :cout] = u.reshape(16, cout, cin)
    return np.ascontiguousarray(padded.reshape(16, co_pad // tm, tm, cin).transpose(0, 1, 3, 2))


class WinogradConv:
    """The three launches of one conv layer, bound to the layer's buffers and fresh scratch."""

    def __init__(self, lw: Lowerer, layer: ConvLayer) -> None:
        self.lw, self.layer = lw, layer
        self.tiles_y, self.tiles_x = cdiv(layer.ho, 2), cdiv(layer.wo, 2)
        self.t = self.tiles_y * self.tiles_x
        tm = GEMM_TILE["TM"]
        self.co_pad = round_up(layer.cout, tm)
        self.u = lw.const_buffer(transformed_weights(layer.weight, tm))
        flags = cl.mem_flags.READ_WRITE
        self.v = cl.Buffer(lw.rt.context, flags, 4 * 16 * layer.n * layer.cin * self.t)
        self.m = cl.Buffer(lw.rt.context, flags, 4 * 16 * layer.n * layer.cout * self.t)
        lw.buffers += [self.v, self.m]

    def release(self) -> None:
        """Free the weights and scratch (the tile search timed this path and did not keep it)."""
        for buf in (self.u, self.v, self.m):
            self.lw.release(buf)

    def timed(self) -> tuple[list[Built], Callable[[], None]]:
        """What the tile search times: the launches, and how to free them if they lose."""
        return self.launches(), self.release

    def launches(self) -> list[Built]:
        lay, i32 = self.layer, np.int32
        ty, tx, n = self.tiles_y, self.tiles_x, lay.n
        # one program for the three (same defines: the GEMM tile and the epilogue's shape)
        k_in = lay.kernel("winograd", "wino_input", GEMM_TILE)
        a_in = [*lay.x_args, self.v, *map(i32, (lay.cin, lay.h, lay.w, lay.pads[0], lay.pads[1], ty, tx, n))]
        k_mm = lay.kernel("winograd", "wino_gemm", GEMM_TILE)
        a_mm = [self.v, self.u, self.m, *map(i32, (lay.cin, lay.cout, self.co_pad, self.t, n))]
        gs_mm = (cdiv(self.t, 8 * GEMM_TILE["NV"]), cdiv(lay.cout, GEMM_TILE["TM"]), 16 * n)
        k_out = lay.kernel("winograd", "wino_output", GEMM_TILE)
        dims = (lay.cout, lay.ho, lay.wo, ty, tx, n)
        a_out = [self.m, lay.bias_buf, *lay.y_args, *map(i32, dims), *lay.epi]
        return [
            (k_in, a_in, (cdiv(tx, 8), ty, n * lay.cin), "wino_input"),
            (k_mm, a_mm, gs_mm, "wino_gemm"),
            (k_out, a_out, (cdiv(tx, 8), ty, n * lay.cout), "wino_output"),
        ]


def flops(layer: ConvLayer) -> tuple[float, float, float]:
    """Floating-point operations of the three launches (additions of the transforms included)."""
    t = layer.n * cdiv(layer.ho, 2) * cdiv(layer.wo, 2)
    return 64.0 * t * layer.cin, 2.0 * 16 * t * layer.cin * layer.cout, 40.0 * t * layer.cout
