"""The OpenCL backend: ONNX models on our own OpenCL C kernels (``yaguar.kernels``), via pyopencl.

Passes: ``frontend`` (ONNX -> the ``graph`` IR: constant folding incl. QDQ weight dequantisation,
canonical attributes) with ``shapes`` (the shape pass: static shapes for a batch) -> ``fusion`` (BatchNorm folding, Q->DQ to fake-quant, SiLU, Conv epilogue fusion of bias,
activation, fake-quant and residual Add; ``views``: view chains, Concats of Slices as one copy) ->
``int8`` (QDQ convs on int8 kernels, 8-bit tensors between them) ->
``memory`` (views, concat-in-place, buffer reuse) -> ``lower``/``ops`` (kernel launches with bound
arguments; the table of op lowerings is ``ops.LOWERINGS``; ``ops.dwpw_q8`` merges a depthwise int8 conv and
its projection into one launch) -> ``executor.Plan`` (run / profile). ``runtime`` opens the device (PoCL's
CPU workers pinned: ``pin_pocl_workers``) and builds programs
through ``program_cache`` (binaries on disk keyed by device, driver, source and defines; ``-DUSE_FMA``
where fma() is a hardware instruction); ``autotune`` picks conv tiles per device and kernel source
and caches them.

Options (``backends.options.OpenCLOptions``, or a dict of its keys; unknown keys are refused):

- ``device``: substring of ``"<platform> / <device>"`` (e.g. ``"rusticl"``, ``"RX 580"``,
  ``"Portable Computing Language"``); default the first GPU, else the first device.
- ``cache_dir``: folder for compiled programs and autotune results; default ``~/.cache/yaguar/opencl``.
- ``fp16``: store activations as half (halves memory traffic; arithmetic stays fp32); default False.
- ``autotune``: time the candidate conv tiles on first load of each layer shape; default False.
- ``batch_part``: images per part when a batch runs in parts (``split``: on a CPU device a batch
  whose activations overflow the cache runs as consecutive parts through one smaller plan);
  default 0, the largest part that fits half of the device's cache (a GPU: the whole batch).
- ``int8``: QDQ convs on the int8 kernels (``int8``: 8-bit tensors, exact integer sums); True,
  False (fp32 with fake-quant), or None, the default: True on a GPU, False on a CPU device (where
  bench/engine.py measured the int8 kernels no faster).
- ``int8_float_sums``: the int8 kernels' sums in fp32 where that is exact (``f32acc``); None, the
  default: on CPU devices; else int32 multiply-adds on packed 8-bit loads (``char4``).
- ``int8_vnni``: the int8 1x1 convs on AVX-512 VNNI (``vpdpbusd``, int32 sums); None, the default: on
  for a PoCL CPU device whose CPU lists avx512f, avx512bw and avx512_vnni; True refused without them.
- ``integer_dot_product``: None (as the device reports ``cl_khr_integer_dot_product``), False, or
  True (refused on a device without it; no variant uses it yet).

A batch other than the model's is planned on first use (static shapes per batch, compiled once).
"""

from __future__ import annotations

from ..options import OpenCLOptions
from .backend import OpenCLBackend

__all__ = ["OpenCLBackend", "OpenCLOptions"]
