"""``OpenCLBackend``: the engine's Backend on our own OpenCL kernels (see the package docstring)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pyopencl as cl

from ..base import Backend, BackendError, ModelSource, TensorInfo
from ..options import OpenCLOptions, OptionsInput, options_as
from . import fusion
from .autotune import TuneCache, needs_relower, tune_plan
from .executor import KernelTime, Plan
from .frontend import load, read_model
from .int8 import plan_int8
from .program_cache import default_cache_dir
from .runtime import open_runtime
from .split import SplitPlan, part_size, splittable

log = logging.getLogger(__name__)
_int8_choice_logged: set[tuple[str, bool]] = set()  # (device label, int8) choices of the default logged
_vnni_logged: set[str] = set()  # device labels whose int8 1x1 convs on VNNI were logged


def int8_default(device_type: int, vnni: bool = False, end_to_end: bool = False) -> bool:
    """Where ``int8`` is left unset: the int8 kernels on a GPU (8-bit tensors, a quarter of the
    bytes). On a CPU device only where its 1x1 convs run on VNNI and the graph is int8 end to end
    (``int8_end_to_end``: at most two conversions between 8 bits and float), where bench/engine.py
    measured them faster than fp32 with fake-quant (Coral's MobileNetV2 1.24-1.31x); elsewhere fp32 with fake-quant: without VNNI the int8 kernels
    measured 0.70-1.02x, and with it our int8 detectors, float ops between their int8 convs,
    0.76-1.08x (engine/README.md "Int8 on OpenCL")."""
    if not device_type & cl.device_type.CPU:
        return True
    return vnni and end_to_end


def int8_default_for(device_type: int, vnni: bool, model: onnx.ModelProto) -> bool:
    """``int8_default`` for this device and model (the graph is only read on a CPU with VNNI)."""
    cpu_vnni = bool(device_type & cl.device_type.CPU) and vnni
    return int8_default(device_type, cpu_vnni, cpu_vnni and int8_end_to_end(model))


def int8_end_to_end(model: onnx.ModelProto) -> bool:
    """Whether a graph has int8 convs and at most one float op between two of them: at most two
    conversions between 8 bits and float (Coral's classifiers: the input's, and the average pool's
    before the logits conv), not one per float op (our detectors: 18-29)."""
    if not any(n.op_type == "DequantizeLinear" for n in model.graph.node):  # a float graph: no int8 convs
        return False
    g = load(model, None)
    fusion.optimise(g)
    plan_int8(g)
    ops = [n.op for n in g.nodes]
    return "ConvQ8" in ops and ops.count("Quantize8") + ops.count("Dequant8") <= 2


class OpenCLBackend(Backend):
    kind = "opencl"

    def __init__(self, model_path: ModelSource, options: OptionsInput = None) -> None:
        self.options = options_as(OpenCLOptions, options)
        self.model_path = (
            Path(model_path) if not isinstance(model_path, onnx.ModelProto) else Path("model.onnx")
        )
        self._model = model_path if isinstance(model_path, onnx.ModelProto) else read_model(Path(model_path))
        cache_dir = self.options.cache_dir or default_cache_dir()
        self.runtime = open_runtime(self.options.device, cache_dir)
        self.integer_dot = self._integer_dot_product()
        self.int8_vnni = self._int8_vnni()
        self.int8 = self._int8_kernels()
        self._fallbacks_logged: set[str] = set()
        self._tune_cache = TuneCache(cache_dir, self.runtime)
        self._plans: dict[int, Plan | SplitPlan] = {}
        base = self._base_plan()  # compiles the model's own batch now: unsupported ops fail at load
        self._model_batch = base.batch
        self._inputs = [
            TensorInfo(n, base.graph.values[n].shape, self._input_dtype(n)) for n in base.graph.inputs
        ]
        self._outputs = [
            TensorInfo(n, base.graph.values[n].shape, base.graph.values[n].dtype) for n in base.graph.outputs
        ]

    def _input_dtype(self, name: str) -> np.dtype:
        for vi in self._model.graph.input:
            if vi.name == name:
                return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))
        return np.dtype(np.float32)

    def _plan(self, batch: int | None) -> Plan | SplitPlan:
        key = batch if batch is not None else -1
        plan = self._plans.get(key)
        if plan is None and batch is not None:
            plan = self._split_plan(batch)
        if plan is None:
            plan = self._new_plan(batch, tuning=self.options.autotune)
            self._log_int8_choice(plan)
            self._log_int8_fallbacks(plan)
            if self.options.autotune:
                tuned = tune_plan(plan, self._tune_cache)
                if needs_relower(plan):  # Winograd won somewhere: a plan with its launches
                    plan = self._new_plan(batch)
                if tuned:
                    log.info(
                        "autotuned %d conv layers of %s on %s",
                        tuned,
                        self.model_path.name,
                        self.runtime.label,
                    )
            self._plans[key] = plan
            if batch is None:
                self._plans[plan.batch] = plan
        return plan

    def _new_plan(self, batch: int | None, tuning: bool = False) -> Plan:
        return Plan(
            self._model,
            self.runtime,
            batch,
            self.options.fp16,
            self._tune_cache.choices,
            int8=self.int8,
            int8_float_sums=self.options.int8_float_sums,
            tuning=tuning,
            int8_vnni=self.int8_vnni,
        )

    def _int8_kernels(self) -> bool:
        """Whether QDQ convs run on the int8 kernels: as set, else as the device (and, on a CPU
        with VNNI, the graph) wants."""
        if self.options.int8 is not None:
            return self.options.int8
        return int8_default_for(self.runtime.device.type, self.int8_vnni, self._model)

    def _log_int8_choice(self, plan: Plan) -> None:
        """The default's choice, once per device, when a model has 8-bit weights; and once per
        device that the int8 1x1 convs run on VNNI."""
        if not any(v.quant is not None for v in plan.graph.values.values()):
            return
        if self.int8 and self.int8_vnni and self.runtime.label not in _vnni_logged:
            _vnni_logged.add(self.runtime.label)
            log.info(
                "int8 1x1 convs on %s: AVX-512 VNNI, vpdpbusd (the OpenCL option int8_vnni = false: off)",
                self.runtime.label,
            )
        choice = (self.runtime.label, self.int8)
        if self.options.int8 is None and choice not in _int8_choice_logged:
            _int8_choice_logged.add(choice)
            log.info(
                "int8 models on %s: %s (the OpenCL option int8 = true or false chooses)",
                self.runtime.label,
                "int8 kernels (a GPU, or VNNI on a graph int8 end to end: faster there)"
                if self.int8
                else "fp32 with fake-quant (a CPU device: faster there)",
            )

    def _int8_vnni(self) -> bool:
        """Whether the int8 1x1 convs use AVX-512 VNNI: as set, else where the device can
        (``Runtime.vnni``); asked for on a device that cannot, refused (the instruction would
        fault)."""
        wanted, able = self.options.int8_vnni, self.runtime.vnni
        if wanted and not able:
            raise BackendError(
                f"int8_vnni = true, but {self.runtime.label} is not a PoCL CPU device on a CPU with "
                "avx512f, avx512bw and avx512_vnni: leave it unset"
            )
        return able if wanted is None else wanted

    def _integer_dot_product(self) -> bool:
        """Whether the int8 kernels may use the device's integer dot product. Neither PoCL 3.1 nor
        NVIDIA's OpenCL report it: the int8 kernels use packed 8-bit loads and int32 multiply-adds
        (the ``char4`` variant), which every device runs."""
        reported = self.runtime.has_extension("cl_khr_integer_dot_product")
        wanted = self.options.integer_dot_product
        if wanted and not reported:
            raise BackendError(
                f"integer_dot_product = true, but {self.runtime.label} does not report "
                "cl_khr_integer_dot_product: leave it unset to use the char4 int8 kernels"
            )
        return bool(reported and wanted is not False)

    def _log_int8_fallbacks(self, plan: Plan) -> None:
        """One line per op type (per model) that reads an int8 conv's 8-bit output in float."""
        for op, count in sorted(plan.int8_fallbacks.items()):
            if op not in self._fallbacks_logged:
                self._fallbacks_logged.add(op)
                log.info(
                    "int8 %s: %d %s node(s) have no int8 kernel: dequantised, run in float, quantised again",
                    self.model_path.name,
                    count,
                    op,
                )

    def _base_plan(self) -> Plan:
        """The plan of the model's own batch (never split)."""
        plan = self._plan(None)
        assert isinstance(plan, Plan)
        return plan

    def _split_plan(self, batch: int) -> SplitPlan | None:
        """A plan that runs ``batch`` in parts (split.py), when the device wants parts and the model
        allows them; None to plan the whole batch at once."""
        base = self._base_plan()
        per_image = base.mem.size * base.store_dtype.itemsize // max(base.batch, 1)
        part = part_size(batch, per_image, self.runtime.device, self.options.batch_part)
        if part >= batch:
            return None
        part_plan = self._plan(part)
        if not isinstance(part_plan, Plan) or not splittable(load(self._model, batch), part_plan):
            log.info(
                "batch %d of %s runs whole: its outputs do not split by image", batch, self.model_path.name
            )
            return None
        overlap = self.options.overlap
        if overlap is None:  # DMA beside the kernels on a GPU; on a CPU a memcpy on the same cores
            overlap = bool(self.runtime.device.type & cl.device_type.GPU)
        plan = SplitPlan(part_plan, batch, overlap=overlap)
        self._plans[batch] = plan
        return plan

    def plan_for(self, feeds: dict[str, np.ndarray]) -> Plan | SplitPlan:
        first = self._inputs[0]
        if first.name not in feeds:
            raise BackendError(f"missing input {first.name!r}")
        arr = np.asarray(feeds[first.name])
        return self._plan(int(arr.shape[0]) if arr.ndim else None)

    @property
    def inputs(self) -> list[TensorInfo]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[TensorInfo]:
        return list(self._outputs)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.plan_for(feeds).run(feeds)

    def profile(self, feeds: dict[str, np.ndarray]) -> list[KernelTime]:
        """Device time per launch for one run (OpenCL profiling events)."""
        return self.plan_for(feeds).profile(feeds)

    def describe(self) -> str:
        return (
            f"opencl {self.runtime.label} (driver {self.runtime.driver}"
            f"{', fp16 storage' if self.options.fp16 else ''}"
            f"{', int8 kernels: integer dot product' if self.integer_dot else ''})"
        )
