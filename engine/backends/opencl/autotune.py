"""Per-device tile sizes for the conv kernels, found by a short timing run and kept on disk.

For each conv launch whose layer signature (kind, shapes, kernel, stride, groups) has no stored
choice, every candidate tile (TM output channels x 8*NV pixels) with each of three work-group
widths (WG) is built, run ``REPEATS`` times on
the plan's real buffers and timed with profiling events; the fastest is kept, written to
``autotune.json`` under the cache folder keyed by device, driver and the conv kernels' source (a
choice timed on an earlier version of a kernel says nothing about the current one), and used by
later plans. A dense stride-1 3x3 layer also times Winograd (ops/winograd.py: three launches,
summed) against the best direct tile; when it wins, ``{"WINO": 1}`` is stored and the backend lowers
the plan again with it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pyopencl as cl

from yaguar import kernels
from yaguar.durable import atomic_write

from .executor import Plan
from .intmath import round_up
from .lower import Built, Lowerer
from .ops.conv import tile_lsize
from .runtime import Runtime

log = logging.getLogger(__name__)
REPEATS = 3


TUNED_KERNELS = ("conv2d", "conv2d_1x1", "conv2d_1x1_lmem", "conv2d_dw", "conv2d_q8", "winograd")


def kernel_digest() -> str:
    """A short hash of the tuned kernels' source (with common.cl)."""
    text = "\0".join(kernels.source(name) for name in TUNED_KERNELS)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class TuneCache:
    def __init__(self, directory: Path, rt: Runtime) -> None:
        self.path = Path(directory) / "autotune.json"
        self.device_key = f"{rt.label} | {rt.driver} | kernels {kernel_digest()}"
        try:
            self.data: dict[str, dict[str, dict[str, int]]] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}

    @property
    def choices(self) -> dict[str, dict[str, int]]:
        return self.data.setdefault(self.device_key, {})

    def save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(self.data, indent=1, sort_keys=True).encode(), fsync=False)
        except OSError as exc:
            log.warning("cannot write the autotune cache %s: %s", self.path, exc)


def _time(rt: Runtime, kernel: cl.Kernel, gsize: tuple[int, ...], lsize: tuple[int, ...]) -> float:
    cl.enqueue_nd_range_kernel(rt.queue, kernel, gsize, lsize).wait()  # warm-up (and PoCL's specialisation)
    best = float("inf")
    for _ in range(REPEATS):
        ev = cl.enqueue_nd_range_kernel(rt.queue, kernel, gsize, lsize)
        ev.wait()
        best = min(best, (ev.profile.end - ev.profile.start) * 1e-6)
    return best


def _shape(
    lw: Lowerer, gsize: tuple[int, ...], choice: dict[str, int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(global, local) for a tile choice: the work-group it requires or its width WG, else the default."""
    lsize = tile_lsize(choice, len(gsize)) or lw.local_size(gsize)
    return tuple(round_up(g, loc) for g, loc in zip(gsize, lsize, strict=True)), lsize


def _time_alternative(
    lw: Lowerer, rt: Runtime, build: Callable[[], tuple[list[Built], Callable[[], None]]]
) -> float:
    """The summed time of an alternative's launches (run in order, as the plan would); its buffers
    are freed either way: a winning alternative is built again when the plan is lowered again."""
    launches, release = build()
    total = 0.0
    for kernel, args, gsize, _ in launches:
        kernel.set_args(*args)
        total += _time(rt, kernel, *_shape(lw, gsize, {}))
    release()
    return total


def needs_relower(plan: Plan) -> bool:
    """Whether the tile search chose an alternative (Winograd) that the plan was not lowered with."""
    return any(
        launch.tune is not None and launch.tune.current == launch.tune.alternative_choice
        for launch in plan.launches
    )


def tune_plan(plan: Plan, cache: TuneCache) -> int:
    """Tune every untuned conv launch of ``plan`` in place; returns how many layers were timed."""
    lw, rt = plan.lowerer, plan.rt
    tuned = 0
    for launch in plan.launches:
        info = launch.tune
        if info is None:
            continue
        known = cache.choices.get(info.signature)
        if known is not None and known == info.alternative_choice:
            info.current = known  # the plan is lowered again for it (needs_relower)
            continue
        if known is not None:
            if known != info.current:  # tuned earlier in this loop, or by another plan
                kernel, args, gsize, _ = info.build(known)
                kernel.set_args(*args)
                launch.gsize, launch.lsize = _shape(lw, gsize, known)
                launch.kernel, info.current = kernel, known
                info.keep_only(known)
            continue
        results = []
        widths = (32, 64, 128) if lw.is_gpu else (4, 8, 16)  # work-group widths tried per tile
        for tile in info.candidates:
            kernel, args, gsize, _ = info.build(tile)
            kernel.set_args(*args)
            for wg in [None] if tile.get("LMEM") else widths:  # the local-memory GEMM fixes its group
                cand = tile if wg is None else {**tile, "WG": wg}
                gs, ls = _shape(lw, gsize, cand)
                results.append((_time(rt, kernel, gs, ls), cand, kernel, gs, ls))
        ms, cand, kernel, gsize, lsize = min(results, key=lambda r: r[0])
        if info.alternative is not None and info.alternative_choice is not None:
            alt_ms = _time_alternative(lw, rt, info.alternative)
            log.debug("autotune %s: %s %.3f ms against %s %.3f ms", info.signature,
                      info.alternative_choice, alt_ms, cand, ms)  # fmt: skip
            if alt_ms < ms:
                info.current = info.alternative_choice
                cache.choices[info.signature] = info.alternative_choice
                tuned += 1
                continue
        launch.kernel, launch.gsize, launch.lsize = kernel, gsize, lsize
        info.current = cand
        info.keep_only(cand)
        cache.choices[info.signature] = cand
        log.debug("autotune %s: %s (%.3f ms)", info.signature, cand, ms)
        tuned += 1
    if tuned:
        cache.save()
    return tuned
