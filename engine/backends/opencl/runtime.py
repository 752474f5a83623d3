"""OpenCL device selection, context and queue, and program builds through the disk cache.

Devices are chosen by a case-insensitive substring of ``"<platform> / <device>"``; a GPU wins over a
CPU when no selector is given. OpenCL status codes become their names in errors, and a failed build
raises ``BackendError`` carrying the build log.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pyopencl as cl

from yaguar import kernels
from yaguar.kernels import opcodes

from ..base import BackendError
from .program_cache import ProgramCache

log = logging.getLogger(__name__)


def status_name(code: int) -> str:
    """The name of an OpenCL status code (``-5`` -> ``CL_OUT_OF_RESOURCES``)."""
    for name in dir(cl.status_code):
        if not name.startswith("_") and getattr(cl.status_code, name) == code:
            return f"CL_{name}"
    return f"CL_ERROR_{code}"


def describe_error(exc: cl.Error) -> str:
    code = getattr(exc, "code", None)
    if callable(code):
        code = code()
    return f"{status_name(code) if isinstance(code, int) else 'OpenCL error'}: {str(exc)[:300]}"


def device_label(device: cl.Device) -> str:
    return f"{device.platform.name.strip()} / {device.name.strip()}"


@functools.cache
def host_cpu_flags() -> frozenset[str]:
    """The host CPU's feature flags as /proc/cpuinfo lists them (x86: ``fma``, ``avx512_vnni``, ...);
    empty where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def host_cpu_has_fma() -> bool:
    """The host CPU has FMA instructions (x86 flag ``fma``; AArch64 always has fused multiply-add)."""
    if os.uname().machine.lower() in ("aarch64", "arm64"):
        return True
    return "fma" in host_cpu_flags()


VNNI_FLAGS = frozenset({"avx512f", "avx512bw", "avx512_vnni"})  # what kernels/conv2d_q8.cl's DOT needs


def pin_pocl_workers(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Ask PoCL to pin its CPU worker threads, worker i to CPU i (PoCL's ``POCL_AFFINITY``, read when
    it starts its workers: before the first platform query), unless the environment says otherwise
    or this process may not run on every CPU (a container's cpuset: PoCL would pin to CPUs it may
    not use). Unpinned, after a pause between runs the workers often share one core for a while:
    bench/engine.py measured MobileNetV2 int8 at batch 1 at 0.48-0.68 of onnxruntime unpinned and 0.70-0.82
    pinned, in alternate runs (engine/README.md, "Int8 on OpenCL"). Returns whether it set it."""
    if "POCL_AFFINITY" in environ or not hasattr(os, "sched_getaffinity"):
        return False
    if os.sched_getaffinity(0) != set(range(os.cpu_count() or 0)):
        return False
    environ["POCL_AFFINITY"] = "1"
    return True


def list_devices() -> list[cl.Device]:
    pin_pocl_workers()
    try:
        platforms = cl.get_platforms()
    except cl.Error as exc:  # "platform not found" is how an ICD loader with no driver answers
        raise BackendError(f"no OpenCL platform: {describe_error(exc)}") from None
    devices: list[cl.Device] = []
    for platform in platforms:
        try:
            devices.extend(platform.get_devices())
        except cl.Error as exc:
            log.info("OpenCL platform %s has no usable device: %s", platform.name, describe_error(exc))
    if not devices:
        raise BackendError("no OpenCL device found")
    return devices


def select_device(selector: str | None) -> cl.Device:
    """The first device whose "platform / device" label contains ``selector``; GPUs first otherwise."""
    devices = list_devices()
    if selector:
        matches = [d for d in devices if selector.lower() in device_label(d).lower()]
        if not matches:
            labels = ", ".join(device_label(d) for d in devices)
            raise BackendError(f"no OpenCL device matches {selector!r}; available: {labels}")
        return matches[0]
    gpus = [d for d in devices if d.type & cl.device_type.GPU]
    return (gpus or devices)[0]


@dataclass
class Runtime:
    """One device, its context and an in-order profiling queue, and the program cache."""

    device: cl.Device
    cache: ProgramCache
    context: cl.Context = field(init=False)
    queue: cl.CommandQueue = field(init=False)
    _programs: dict[str, cl.Program] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        try:
            self.context = cl.Context([self.device])
            self.queue = cl.CommandQueue(
                self.context, properties=cl.command_queue_properties.PROFILING_ENABLE
            )
        except cl.Error as exc:
            raise BackendError(f"cannot open {device_label(self.device)}: {describe_error(exc)}") from None

    @property
    def label(self) -> str:
        return device_label(self.device)

    @functools.cached_property
    def fast_fma(self) -> bool:
        """Whether fma() is a hardware instruction here (kernels then use it for MAD). A GPU that
        reports fused multiply-add has it; a CPU device reports it even when it would be emulated
        in software, so there the host CPU's own flags decide (the CPU device is the host)."""
        if not self.device.single_fp_config & cl.device_fp_config.FMA:
            return False
        return bool(self.device.type & cl.device_type.GPU) or host_cpu_has_fma()

    @property
    def vnni(self) -> bool:
        """Whether the int8 kernels can use AVX-512 VNNI (vpdpbusd through clang's builtin, in a
        function built for that feature: kernels/conv2d_q8.cl, DOT): a PoCL CPU device (the host
        CPU, built by PoCL's clang) on a CPU whose /proc/cpuinfo lists every flag it needs."""
        return (
            bool(self.device.type & cl.device_type.CPU)
            and "Portable Computing Language" in self.device.platform.name
            and os.uname().machine.lower() in ("x86_64", "amd64")
            and VNNI_FLAGS.issubset(host_cpu_flags())
        )

    def has_extension(self, name: str) -> bool:
        return name in self.device.extensions.split()

    @property
    def driver(self) -> str:
        return f"{self.device.driver_version} / {self.device.version}"

    def build_options(self, defines: Mapping[str, int | str] | None = None) -> list[str]:
        """The compiler options of a kernel build: the op codes (``kernels/opcodes.py``), its own
        ``-D`` defines, then the device's."""
        codes = [f"-D{k}={v}" for k, v in sorted(opcodes.defines().items())]
        options = codes + [f"-D{k}={v}" for k, v in sorted((defines or {}).items())]
        if self.fast_fma:
            options.append("-DUSE_FMA=1")
        options.append("-cl-mad-enable")
        return options

    def program(self, name: str, defines: Mapping[str, int | str] | None = None) -> cl.Program:
        """Build (or load from the cache) kernel file ``name`` with ``-D`` defines."""
        options = self.build_options(defines)
        source = kernels.source(name)
        key = hashlib.sha256("\0".join([self.label, self.driver, source, *options]).encode()).hexdigest()
        if key in self._programs:
            return self._programs[key]
        program = self._load_cached(key, options)
        if program is None:
            program = self._build_source(name, source, options)
            try:
                binaries = cast(list[bytes], program.get_info(cl.program_info.BINARIES))
                binary = binaries[0]
                self.cache.put(key, binary)
            except cl.Error as exc:
                log.info("cannot read the binary of %s to cache it: %s", name, describe_error(exc))
        self._programs[key] = program
        return program

    def _load_cached(self, key: str, options: list[str]) -> cl.Program | None:
        binary = self.cache.get(key)
        if binary is None:
            return None
        try:
            return cl.Program(self.context, [self.device], [binary]).build(options=options)
        except cl.Error as exc:  # a stale or foreign binary: rebuild from source
            log.info("cached OpenCL binary %s unusable (%s); rebuilding", key[:12], describe_error(exc))
            self.cache.drop(key)
            return None

    def _build_source(self, name: str, source: str, options: list[str]) -> cl.Program:
        try:
            return cl.Program(self.context, source).build(options=options)
        except cl.RuntimeError as exc:  # pyopencl puts the compiler's build log in the message
            raise BackendError(f"OpenCL build of {name}.cl failed ({' '.join(options)}):\n{exc}") from None


def open_runtime(selector: str | None, cache_dir: Path) -> Runtime:
    device = select_device(selector)
    return Runtime(device=device, cache=ProgramCache(cache_dir))
