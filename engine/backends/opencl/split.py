"""A batch run as consecutive parts through one smaller plan, on CPU devices.

On a CPU device a layer's activations for a whole batch of 8 (YOLOX-nano: 22 MB for its first
layer) overflow the cache, so every layer streams them through main memory; one image at a time
keeps a layer's input and output in cache (4.6 MiB of activations per image). Measured on PoCL
(2 cores, YOLOX-nano batch 8): 58 ms per image as one batch, 32 ms as eight parts of one (19:59
UTC, load 10.6). Parts of two images (half the 32 MiB L3; a quarter gave parts of one) halve the
launches and still fit: 23:34 UTC, load 2.1, same process, 12.09/12.12 -> 10.87/10.90 ms per image
(best of 12, two pairs), CPU 22.0 -> 20.4; FastestDet 5.17/4.99 -> 4.38/4.50; parts of 4 or the
whole batch were no faster and cost more CPU. A GPU wants the whole batch in one launch, so there
the batch is never split.

The parts give the same numbers as the whole batch: every kernel treats the images of a batch
independently, and a model whose outputs do not scale with the batch (a Reshape that folds the
batch into another axis) is never split.
"""

from __future__ import annotations

import logging

import numpy as np
import pyopencl as cl

from ..base import BackendError
from .executor import KernelTime, Plan
from .graph import Graph
from .streams import Streamer

log = logging.getLogger(__name__)
CACHE_SHARE = 2  # a part's activations may fill half of the device's cache (others share it)


def part_size(batch: int, bytes_per_image: int, device: cl.Device, fixed: int = 0) -> int:
    """How many images a part holds, always a divisor of ``batch``: the largest one up to
    ``fixed`` when that is set; else the whole batch on a GPU, and on a CPU the largest whose
    activations fit the cache share (at least 1)."""
    divisors = [d for d in range(1, batch + 1) if batch % d == 0]
    if fixed:
        return max(d for d in divisors if d <= fixed)
    if device.type & cl.device_type.GPU:
        return batch
    budget = int(device.global_mem_cache_size) // CACHE_SHARE
    return max((d for d in divisors if d * bytes_per_image <= budget), default=1)


def splittable(gw: Graph, part: Plan) -> bool:
    """Whether the inputs and outputs of graph ``gw`` (the whole batch) are ``part``'s stacked
    along axis 0, the batch."""
    gp = part.graph
    if len(gw.inputs) != len(gp.inputs) or len(gw.outputs) != len(gp.outputs):
        return False
    ratio = gw.batch // part.batch
    for nw, np_ in [*zip(gw.inputs, gp.inputs, strict=True), *zip(gw.outputs, gp.outputs, strict=True)]:
        sw, sp = gw.values[nw].shape, gp.values[np_].shape
        if gw.values[nw].const is not None or not sw or sw[1:] != sp[1:] or sw[0] != sp[0] * ratio:
            return False
    return True


class SplitPlan:
    """Runs a batch of ``batch`` images as parts through ``part`` (a plan for a divisor of it)."""

    def __init__(self, part: Plan, batch: int, overlap: bool = True) -> None:
        if batch % part.batch:
            raise BackendError(f"a batch of {batch} cannot be run in parts of {part.batch}")
        self.part, self.batch = part, batch
        self.rt, self.launches, self.lowerer = part.rt, part.launches, part.lowerer
        # uploads and downloads on a second queue beside the compute (streams.py)
        self.streamer = Streamer(part) if overlap else None
        log.info(
            "batch %d runs as %d parts of %d%s",
            batch,
            batch // part.batch,
            part.batch,
            ", transfers overlapped" if overlap else "",
        )

    def _parts(self, feeds: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
        step = self.part.batch
        for name, arr in feeds.items():
            if np.asarray(arr).shape[:1] != (self.batch,):
                raise BackendError(
                    f"input {name!r} has shape {np.shape(arr)}, the plan expects batch {self.batch}"
                )
        return [
            {name: np.asarray(arr)[i : i + step] for name, arr in feeds.items()}
            for i in range(0, self.batch, step)
        ]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self.streamer is not None:
            results = self.streamer.run(self._parts(feeds))
        else:
            results = [self.part.run(part) for part in self._parts(feeds)]
        return [np.concatenate(outs) for outs in zip(*results, strict=True)]

    def profile(self, feeds: dict[str, np.ndarray]) -> list[KernelTime]:
        """Every launch of every part, in order (so a batch of 8 in parts of 1 lists 8 runs)."""
        return [k for part in self._parts(feeds) for k in self.part.profile(part)]
