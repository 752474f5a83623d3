"""Lowering: each graph node becomes one or more kernel launches with their arguments bound once.

The ``Lowerer`` holds what every op's lowering needs: tensor addresses from the memory plan,
strides of views, constant buffers, programs from the runtime's cache, and the default work-group
shape. Op-specific code lives in ``ops/``, which registers each op's function in ``LOWERINGS`` with
``@lowering`` and walks a graph through them (``ops.lower_graph``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyopencl as cl
import pyopencl.cltypes as clt

from ..base import BackendError
from .graph import Graph, Node
from .intmath import round_up
from .memory import MemoryPlan
from .runtime import Runtime

log = logging.getLogger(__name__)
MAX_DIMS = 6


Tile = dict[str, int]  # a kernel variant's -D parameters, e.g. {"TM": 8, "NV": 2}
# What rebuilding a launch for a tile gives: kernel, its arguments, global size, profiling name.
Built = tuple[cl.Kernel, list[Any], tuple[int, ...], str]


@dataclass
class Tunable:
    """What the autotuner may vary in a launch, and how to rebuild it."""

    signature: str  # the layer's key in the autotune cache (kind, shapes, kernel, stride, groups)
    candidates: list[Tile]
    build: Callable[[Tile], Built]
    current: Tile
    # Frees the weight layouts that only other tiles read, once the choice is made: the plan lives
    # as long as the model is loaded, and a copy of the weights per candidate would live with it.
    keep_only: Callable[[Tile], None]
    # Another way to run the layer, in several launches (Winograd): its launches to time, and how
    # to free them when they lose. When it wins, its choice is stored and the plan lowered again.
    alternative: Callable[[], tuple[list[Built], Callable[[], None]]] | None = None
    alternative_choice: Tile | None = None


@dataclass
class Launch:
    """One kernel enqueue with its arguments already set."""

    node: str
    kernel_name: str  # file (and variant) for profiling tables, e.g. "conv2d_1x1[TM=8,NV=2]"
    kernel: cl.Kernel
    gsize: tuple[int, ...]
    lsize: tuple[int, ...] | None
    flops: float = 0.0
    nbytes: float = 0.0
    tune: Tunable | None = None  # conv launches: what autotune may vary


class Lowerer:
    def __init__(self, g: Graph, mem: MemoryPlan, rt: Runtime, fp16: bool) -> None:
        self.g, self.mem, self.rt, self.fp16 = g, mem, rt, fp16
        self.itemsize = 2 if fp16 else 4
        self.pool = cl.Buffer(rt.context, cl.mem_flags.READ_WRITE, max(mem.size, 1) * self.itemsize)
        self.launches: list[Launch] = []
        self.buffers: list[cl.Buffer] = []  # constants and meta data, kept alive with the plan
        self.is_gpu = bool(rt.device.type & cl.device_type.GPU)
        self.choices: dict[str, dict[str, int]] = {}  # autotuned tiles by layer signature
        self.int8_float_sums = not self.is_gpu  # the int8 convs' exact fp32 sums (ops/conv_q8.py)
        self.int8_vnni = False  # the int8 1x1 convs on AVX-512 VNNI (ops/conv_q8.py, DOT)
        self.winograd_default = True  # untuned dense 3x3 layers may run Winograd (ops/winograd.py)

    # --- programs and launches -------------------------------------------------------------
    def defines(self, **extra: int) -> dict[str, int]:
        d: dict[str, int] = dict(extra)
        if self.fp16:
            d["STORE_HALF"] = 1
        return d

    def kernel(self, file: str, entry: str, defines: dict[str, int] | None = None) -> cl.Kernel:
        return cl.Kernel(self.rt.program(file, self.defines(**(defines or {}))), entry)

    def local_size(self, gsize: tuple[int, ...], heavy: bool = True) -> tuple[int, ...]:
        """The work-group shape. On a GPU: 64 work-items. On a CPU, PoCL runs one group per thread
        and loops over its items (and compiles one specialisation per distinct group shape, which
        is what makes a cold start slow), so only a few fixed shapes are used: 8 items for heavy
        work-items (a conv tile), 16 or 64 for light ones (one element). Only dim 0 is rounded up
        (kernels bounds-check it); later dims use exact divisors."""
        if not self.is_gpu:
            d0 = 8 if heavy else (16 if gsize[0] <= 16 else 64)
            return (d0,) + (1,) * (len(gsize) - 1)
        budget = 64
        d0 = 1
        while d0 * 2 <= min(budget, gsize[0]):
            d0 *= 2
        out = [d0]
        budget = max(1, budget // d0)
        for g in gsize[1:]:
            d = max(x for x in range(1, budget + 1) if g % x == 0)
            out.append(d)
            budget = max(1, budget // d)
        return tuple(out)

    def add(
        self,
        node: Node,
        name: str,
        kernel: cl.Kernel,
        args: list,
        gsize: tuple[int, ...],
        flops: float = 0.0,
        nbytes: float = 0.0,
        lsize: tuple[int, ...] | None = None,
        tune: Tunable | None = None,
    ) -> Launch:
        lsize = lsize or self.local_size(gsize, heavy=tune is not None)
        gsize = tuple(round_up(g, loc) for g, loc in zip(gsize, lsize, strict=True))
        try:
            kernel.set_args(*args)
        except (cl.Error, TypeError, ValueError) as exc:
            raise BackendError(f"cannot bind the arguments of {name} for node {node.name!r}: {exc}") from None
        launch = Launch(node.name, name, kernel, gsize, lsize, flops, nbytes, tune)
        self.launches.append(launch)
        return launch

    # --- tensors ------------------------------------------------------------------------------
    def shape(self, t: str) -> tuple[int, ...]:
        return self.g.values[t].shape

    def addr(self, t: str) -> tuple[cl.Buffer, np.int32, np.int32]:
        """(buffer, element offset, batch stride) of a tensor; constants get their own buffer."""
        if self.g.is_const(t):
            arr = self.g.const(t).astype(np.float16 if self.fp16 else np.float32)
            return self.const_buffer(arr), np.int32(0), np.int32(max(1, int(np.prod(arr.shape[1:]))))
        off, bstride = self.mem.address(t)
        return self.pool, np.int32(off), np.int32(bstride)

    def strides(self, t: str) -> list[int]:
        """Element strides of a tensor's view (batch dim may be wider, the rest contiguous)."""
        shape = self.shape(t)
        st = [1] * len(shape)
        for i in range(len(shape) - 2, -1, -1):
            st[i] = st[i + 1] * shape[i + 1]
        if shape and not self.g.is_const(t):
            st[0] = self.mem.address(t)[1]
        return st

    def const_buffer(self, arr: np.ndarray) -> cl.Buffer:
        arr = np.ascontiguousarray(arr)
        if arr.nbytes == 0:
            arr = np.zeros(1, arr.dtype)
        buf = cl.Buffer(self.rt.context, cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR, hostbuf=arr)
        self.buffers.append(buf)
        return buf

    def release(self, buf: cl.Buffer) -> None:
        """Free a constant buffer that no launch of the plan reads any more."""
        self.buffers.remove(buf)
        buf.release()

    def nd(
        self,
        file: str,
        entry: str,
        dims: list[int],
        *stride_sets: list[int],
        defines: dict[str, int] | None = None,
    ) -> tuple[cl.Kernel, cl.Buffer, tuple[int, int, int]]:
        """Kernel, meta table and range of an N-d op after merging dims (RANK3 variant when <= 3)."""
        dims, sets = collapse(list(dims) or [1], *[list(s) or [1] for s in stride_sets])
        kernel = self.kernel(file, entry, {**(defines or {}), **({"RANK3": 1} if len(dims) <= 3 else {})})
        return kernel, self.meta(dims, *sets), nd_global(dims)

    def meta(self, dims: list[int], *stride_sets: list[int]) -> cl.Buffer:
        """The int table of the N-d kernels: dims then each stride set, left-padded to 6 dims."""
        if len(dims) > MAX_DIMS:
            raise BackendError(f"tensors of rank {len(dims)} > {MAX_DIMS} are not supported")
        pad = MAX_DIMS - len(dims)
        rows = [[1] * pad + list(dims)] + [[0] * pad + list(s) for s in stride_sets]
        return self.const_buffer(np.array(rows, dtype=np.int32).reshape(-1))


def broadcast_strides(lw: Lowerer, t: str, out_shape: tuple[int, ...]) -> list[int]:
    """The strides that read tensor ``t`` broadcast to ``out_shape`` (0 on broadcast dims)."""
    pad = len(out_shape) - len(lw.shape(t))
    shape, st = [1] * pad + list(lw.shape(t)), [0] * pad + lw.strides(t)
    return [0 if (d == 1 and o != 1) else s for d, s, o in zip(shape, st, out_shape, strict=True)]


def collapse(dims: list[int], *stride_sets: list[int]) -> tuple[list[int], list[list[int]]]:
    """Drop size-1 dims and merge neighbours that every operand walks contiguously, so most
    N-d ops become rank <= 3 and run without index division."""
    keep = [i for i, d in enumerate(dims) if d != 1] or [len(dims) - 1]
    out_d = [dims[i] for i in keep]
    out_s = [[s[i] for i in keep] for s in stride_sets]
    i = len(out_d) - 1
    while i > 0:
        if all(s[i - 1] == s[i] * out_d[i] for s in out_s):
            out_d[i - 1] *= out_d[i]
            for s in out_s:
                s[i - 1] = s[i]
                del s[i]
            del out_d[i]
        i -= 1
    return out_d, out_s


def nd_global(dims: list[int] | tuple[int, ...]) -> tuple[int, int, int]:
    """The 3-d range of the N-d kernels: last axis, the one before, the rest flattened."""
    p = [1] * (MAX_DIMS - len(dims)) + [int(d) for d in dims]
    return p[5], p[4], int(np.prod(p[:4]))


def vec(kind: str, *vals: float) -> np.ndarray:
    return getattr(clt, f"make_{kind}")(*vals)


LOWERINGS: dict[str, Callable[[Lowerer, Node], None]] = {}


def lowering(*ops: str) -> Callable[[Callable[[Lowerer, Node], None]], Callable[[Lowerer, Node], None]]:
    def register(fn: Callable[[Lowerer, Node], None]) -> Callable[[Lowerer, Node], None]:
        for op in ops:
            LOWERINGS[op] = fn
        return fn

    return register
