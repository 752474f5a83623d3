"""Overlapped parts: the parts of a batch (split.py) run with their uploads and downloads on a
second command queue, so that part N+1's upload and part N-1's download run while part N computes.

Each of two slots holds a host-pinned input and output buffer (``ALLOC_HOST_PTR``, mapped once)
and a device input and output buffer. A part's inputs go pinned -> device slot on the transfer
queue; on the compute queue a device copy moves them into the plan's pool, the kernels run, and a
device copy moves the outputs into the slot; the transfer queue then reads them back. Events order
the two queues: compute N waits for upload N; upload N+2 waits until compute N has taken its
inputs out of the slot; the output copy N+2 waits until download N has read the slot. The pool
itself is only ever touched by the compute queue, in order, so the kernels and their results are
exactly those of the plain path (``Plan.run`` per part).

On a GPU the copies are DMA beside the kernels. On a CPU device (PoCL) a "transfer" is a memcpy on
the same cores, so the overlap gains little there: ``bench/engine.py --overlap`` measures it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pyopencl as cl

from ..base import BackendError
from .executor import Plan, host_output
from .runtime import describe_error


@dataclass
class Slot:
    """One of the two alternating buffer sets, and the events that say when it may be reused."""

    dev_in: cl.Buffer
    dev_out: cl.Buffer
    host_in: np.ndarray  # mapped view of a pinned (ALLOC_HOST_PTR) buffer
    host_out: np.ndarray
    pinned: list[cl.Buffer]  # the mapped buffers, kept alive with their views
    uploaded: cl.Event | None = None  # host_in may be refilled once this is done
    consumed: cl.Event | None = None  # dev_in may be overwritten once this is done
    downloaded: cl.Event | None = None  # dev_out / host_out may be reused once this is done
    part: int = -1  # the part whose outputs host_out holds once ``downloaded`` is done


@dataclass
class Trace:
    """The events of one part, for tests and the benchmark (which queue ran what, and when)."""

    part: int
    slot: int
    upload: cl.Event
    compute_in: cl.Event  # the last device copy of the inputs into the pool
    compute_out: cl.Event  # the last device copy of the outputs into the slot
    download: cl.Event
    waits: dict[str, list[cl.Event]] = field(default_factory=dict)


def _pinned(ctx: cl.Context, queue: cl.CommandQueue, n: int, dtype: np.dtype) -> tuple[cl.Buffer, np.ndarray]:
    flags = cl.mem_flags.READ_WRITE | cl.mem_flags.ALLOC_HOST_PTR
    buf = cl.Buffer(ctx, flags, max(n, 1) * dtype.itemsize)
    # pyopencl's flags are plain ints at run time; its stubs want the enum type
    flags_rw = cast(cl.map_flags, cl.map_flags.READ | cl.map_flags.WRITE)
    host, _ = cl.enqueue_map_buffer(queue, buf, flags_rw, 0, (max(n, 1),), dtype, is_blocking=True)
    return buf, host


class Streamer:
    """Runs the parts of a batch through ``plan`` with transfers overlapped (module docstring)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        rt = plan.rt
        self.compute = rt.queue
        self.transfer = cl.CommandQueue(rt.context, properties=cl.command_queue_properties.PROFILING_ENABLE)
        g, dt = plan.graph, plan.store_dtype
        self.dtype = dt
        # (name, pool element offset, slot element offset, element count)
        self.ins = self._layout(list(g.inputs))
        self.outs = self._layout([n for n in g.outputs if g.values[n].const is None])
        n_in = sum(c for *_, c in self.ins)
        n_out = sum(c for *_, c in self.outs)
        self.slots: list[Slot] = []
        for _ in range(2):
            pin_in, host_in = _pinned(rt.context, self.transfer, n_in, dt)
            pin_out, host_out = _pinned(rt.context, self.transfer, n_out, dt)
            self.slots.append(
                Slot(
                    dev_in=cl.Buffer(rt.context, cl.mem_flags.READ_WRITE, max(n_in, 1) * dt.itemsize),
                    dev_out=cl.Buffer(rt.context, cl.mem_flags.READ_WRITE, max(n_out, 1) * dt.itemsize),
                    host_in=host_in,
                    host_out=host_out,
                    pinned=[pin_in, pin_out],
                )
            )
        self.trace: list[Trace] = []  # the last run's events, one entry per part

    def _layout(self, names: list[str]) -> list[tuple[str, int, int, int]]:
        layout, at = [], 0
        for name in names:
            count = int(np.prod(self.plan.graph.values[name].shape))
            layout.append((name, self.plan.mem.address(name)[0], at, count))
            at += count
        return layout

    def run(self, parts: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
        """The outputs of each part, as ``Plan.run`` gives them."""
        try:
            return self._run(parts)
        except cl.Error as exc:
            raise BackendError(f"OpenCL run failed: {describe_error(exc)}") from None
        finally:
            for slot in self.slots:  # a run that failed half way leaves no part for the next run
                slot.part = -1

    def _run(self, parts: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
        results: list[list[np.ndarray]] = [[] for _ in parts]
        self.trace = []
        uploads: dict[int, cl.Event] = {}
        if parts:
            uploads[0] = self._upload(0, parts[0])
        for i in range(len(parts)):
            # the next part's upload goes ahead of this part's download on the in-order transfer
            # queue, so it runs while this part computes
            if i + 1 < len(parts):
                uploads[i + 1] = self._upload(i + 1, parts[i + 1])
            self._compute_and_download(i, uploads.pop(i), results)
        self.transfer.finish()
        for slot in self.slots:
            self._harvest(slot, results)
        return results

    def _upload(self, i: int, feeds: dict[str, np.ndarray]) -> cl.Event:
        slot = self.slots[i % 2]
        if slot.uploaded is not None:
            slot.uploaded.wait()  # the host side of the slot is still being read by upload i-2
        for name, _, at, count in self.ins:
            slot.host_in[at : at + count] = self.plan.feed(feeds, name).reshape(-1)  # to the storage type
        waits = [slot.consumed] if slot.consumed is not None else []
        ev = cl.enqueue_copy(self.transfer, slot.dev_in, slot.host_in, is_blocking=False, wait_for=waits)
        self.transfer.flush()
        slot.uploaded = ev
        self.trace.append(Trace(i, i % 2, ev, ev, ev, ev, {"upload": waits}))
        return ev

    def _compute_and_download(self, i: int, uploaded: cl.Event, results: list[list[np.ndarray]]) -> None:
        slot, isz = self.slots[i % 2], self.dtype.itemsize
        pool, q = self.plan.lowerer.pool, self.compute
        ev = uploaded
        for _, off, at, count in self.ins:
            ev = cl.enqueue_copy(
                q, pool, slot.dev_in, byte_count=count * isz, src_offset=at * isz, dst_offset=off * isz,
                wait_for=[uploaded],
            )  # fmt: skip
        slot.consumed = consumed = ev
        for launch in self.plan.launches:
            ev = cl.enqueue_nd_range_kernel(q, launch.kernel, launch.gsize, launch.lsize)
        out_waits = [slot.downloaded] if slot.downloaded is not None else []
        for _, off, at, count in self.outs:
            ev = cl.enqueue_copy(
                q, slot.dev_out, pool, byte_count=count * isz, src_offset=off * isz, dst_offset=at * isz,
                wait_for=out_waits,
            )  # fmt: skip
        q.flush()
        self._harvest(slot, results)  # part i-2's outputs leave host_out before it is overwritten
        down = cl.enqueue_copy(self.transfer, slot.host_out, slot.dev_out, is_blocking=False, wait_for=[ev])
        self.transfer.flush()
        slot.downloaded, slot.part = down, i
        trace = next(t for t in self.trace if t.part == i)
        trace.compute_in, trace.compute_out, trace.download = consumed, ev, down
        trace.waits.update(compute=[uploaded], outputs=out_waits, download=[ev])

    def _harvest(self, slot: Slot, results: list[list[np.ndarray]]) -> None:
        """Copy a finished download out of the slot's pinned memory into the part's results."""
        if slot.downloaded is None or slot.part < 0 or results[slot.part]:
            return
        slot.downloaded.wait()
        g, outs = self.plan.graph, iter(self.outs)
        for name in g.outputs:
            value = g.values[name]
            if value.const is not None:
                results[slot.part].append(value.const.copy())
                continue
            _, _, at, count = next(outs)
            results[slot.part].append(host_output(value, slot.host_out[at : at + count].reshape(value.shape)))
