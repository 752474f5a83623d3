"""The plan executor: ``Plan`` runs the compiler's passes once for a batch size (front end and shapes:
frontend.py, shapes.py; fusion.py; tensor placement: memory.py; lowering to bound kernel launches:
lower.py, ops/), then executes the result: ``Plan.run`` uploads the inputs into the pool, enqueues
every launch in order and reads the outputs back; ``Plan.profile`` times each launch."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx
import pyopencl as cl

from ..base import BackendError
from . import frontend, fusion
from .graph import Value
from .int8 import plan_int8
from .lower import Launch, Lowerer
from .memory import MemoryPlan
from .ops import lower_graph
from .ops.dwpw_q8 import fuse_dw_pw
from .runtime import Runtime, describe_error

log = logging.getLogger(__name__)


@dataclass
class KernelTime:
    node: str
    kernel: str
    ms: float
    flops: float
    nbytes: float


def host_output(value: Value, host: np.ndarray) -> np.ndarray:
    """An output read back in the storage type, as a new array of the model's type (integer
    outputs rounded and clipped)."""
    if value.dtype.kind in "iu":
        info = np.iinfo(value.dtype)
        host = np.clip(np.rint(host), info.min, info.max)
    return host.astype(value.dtype)


class Plan:
    def __init__(
        self,
        model: onnx.ModelProto,
        rt: Runtime,
        batch: int | None,
        fp16: bool,
        choices: dict[str, dict[str, int]] | None = None,
        keep_all: bool = False,
        int8: bool = True,
        int8_float_sums: bool | None = None,
        tuning: bool = False,
        int8_vnni: bool = False,
        int8_fuse: bool = True,
    ) -> None:
        self.rt = rt
        self.graph = g = frontend.load(model, batch)
        fusion.optimise(g)
        # QDQ convs on the int8 kernels; {op type: count} of the ops that read their output in float
        self.int8_fallbacks = plan_int8(g) if int8 else {}
        if int8 and int8_vnni and int8_fuse:  # depthwise 3x3 + 1x1 in one launch (ops/dwpw_q8.py)
            fuse_dw_pw(g)
        self.mem = MemoryPlan(g)
        # keep_all (tests, debugging): no buffer reuse, so ``tensor`` can read any intermediate.
        self.mem.plan(
            g.nodes,
            keep=set(g.values) - {n for n, v in g.values.items() if v.const is not None}
            if keep_all
            else set(g.outputs),
        )
        self.lowerer = Lowerer(g, self.mem, rt, fp16)
        if int8_float_sums is not None:
            self.lowerer.int8_float_sums = int8_float_sums
        self.lowerer.int8_vnni = int8_vnni
        self.lowerer.choices = dict(choices or {})
        # a plan about to be tuned lowers untuned layers to the direct kernel, whose launch carries
        # the tile search (Winograd's default would leave nothing to compare it with)
        self.lowerer.winograd_default = not tuning
        self.launches: list[Launch] = lower_graph(self.lowerer)
        self.store_dtype = np.dtype(np.float16 if fp16 else np.float32)
        self.batch = g.batch
        log.info(
            "planned %d nodes as %d launches, pool %.1f MiB, batch %d",
            len(g.nodes),
            len(self.launches),
            self.mem.size * self.store_dtype.itemsize / 2**20,
            g.batch,
        )

    def feed(self, feeds: dict[str, np.ndarray], name: str) -> np.ndarray:
        """Input ``name`` from ``feeds``, checked against the plan's shape."""
        if name not in feeds:
            raise BackendError(f"missing input {name!r}")
        arr = np.asarray(feeds[name])
        if tuple(arr.shape) != self.graph.values[name].shape:
            raise BackendError(
                f"input {name!r} has shape {arr.shape}, the plan expects {self.graph.values[name].shape}"
            )
        return arr

    def _upload(self, feeds: dict[str, np.ndarray]) -> None:
        g = self.graph
        self._staged: list[np.ndarray] = []  # copies are asynchronous: keep the host arrays until finish()
        for name in g.inputs:
            host = np.ascontiguousarray(self.feed(feeds, name), dtype=self.store_dtype)
            off, _ = self.mem.address(name)
            cl.enqueue_copy(
                self.rt.queue,
                self.lowerer.pool,
                host,
                dst_offset=off * self.store_dtype.itemsize,
                is_blocking=False,
            )
            self._staged.append(host)

    def _download(self) -> list[np.ndarray]:
        g = self.graph
        outs = []
        for name in g.outputs:
            value = g.values[name]
            if value.const is not None:
                outs.append(value.const.copy())
                continue
            host = np.empty(value.shape, self.store_dtype)
            off, _ = self.mem.address(name)
            cl.enqueue_copy(
                self.rt.queue, host, self.lowerer.pool, src_offset=off * self.store_dtype.itemsize
            )
            outs.append(host_output(value, host))
        return outs

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            self._upload(feeds)
            q = self.rt.queue
            for launch in self.launches:
                cl.enqueue_nd_range_kernel(q, launch.kernel, launch.gsize, launch.lsize)
            outs = self._download()
            q.finish()
        except cl.Error as exc:
            raise BackendError(f"OpenCL run failed: {describe_error(exc)}") from None
        return outs

    def profile(self, feeds: dict[str, np.ndarray]) -> list[KernelTime]:
        """One run with an event per launch; device time of each launch (profiling queue)."""
        self._upload(feeds)
        events = [
            cl.enqueue_nd_range_kernel(self.rt.queue, la.kernel, la.gsize, la.lsize) for la in self.launches
        ]
        self.rt.queue.finish()
        return [
            KernelTime(
                la.node, la.kernel_name, (ev.profile.end - ev.profile.start) * 1e-6, la.flops, la.nbytes
            )
            for la, ev in zip(self.launches, events, strict=True)
        ]

    def tensor(self, name: str) -> np.ndarray:
        """Read any tensor back through its view (meaningful for plans built with keep_all)."""
        value = self.graph.values[name]
        off, bstride = self.mem.address(name)
        n = value.shape[0] if value.shape else 1
        inner = int(np.prod(value.shape[1:])) if value.shape else 1
        host = np.empty(int(bstride) * (n - 1) + inner, self.store_dtype)
        cl.enqueue_copy(
            self.rt.queue, host, self.lowerer.pool, src_offset=int(off) * self.store_dtype.itemsize
        )
        rows = np.stack([host[i * int(bstride) : i * int(bstride) + inner] for i in range(n)])
        return rows.reshape(value.shape).astype(np.float32)
