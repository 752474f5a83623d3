"""Typed options of each backend, discriminated on ``type`` (the way Frigate's detector configs are):
``OnnxRuntimeOptions``, ``OpenCLOptions``, and ``AutoOptions``, which holds one of each for the
backend it ends up on. Each model refuses keys it does not know, so an onnxruntime option given to
OpenCL is an error, never silently ignored.

Callers may still hand a plain dict (the CLIs, tests): ``options_as`` validates it into the model of
the backend's kind. For ``auto`` a flat dict is split: each key goes to the backend(s) that have it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

from yaguar.config import ConfigError, Section, problems_of, validate

from .base import BackendError


class OnnxRuntimeOptions(Section):
    type: Literal["onnxruntime"] = "onnxruntime"
    threads: int = Field(default=0, ge=0, le=1024, description="intra-op threads; 0: every core")
    allow_spinning: bool = Field(
        default=False, description="let idle threads spin (costs a core while the station decodes)"
    )


class OpenCLOptions(Section):
    type: Literal["opencl"] = "opencl"
    device: str | None = Field(
        default=None,
        max_length=200,
        description='substring of "<platform> / <device>"; None: the first GPU, else CPU',
    )
    cache_dir: Path | None = Field(
        default=None, description="program + autotune cache; None: ~/.cache/yaguar/opencl"
    )
    fp16: bool = Field(default=False, description="store activations as half (compute stays fp32)")
    autotune: bool = Field(
        default=False, description="time candidate conv tiles once per layer shape and cache them"
    )
    int8: bool | None = Field(
        default=None,
        description="QDQ convs on int8 kernels with 8-bit tensors; False: fp32 with fake-quant; "
        "None: int8 kernels on GPUs, and on CPU devices with VNNI (int8_vnni) for graphs int8 end to end; "
        "else fp32 on CPU devices (int8 measured no faster there: engine/README.md)",
    )
    int8_float_sums: bool | None = Field(
        default=None,
        description="the int8 kernels' sums in fp32 where exact (8-bit products, sums under 2^24); "
        "False: int32 sums; None: fp32 on CPU devices (faster on PoCL), int32 on GPUs",
    )
    int8_vnni: bool | None = Field(
        default=None,
        description="the int8 1x1 convs on AVX-512 VNNI (vpdpbusd, int32 sums) on a PoCL CPU device; "
        "None: where the CPU has avx512_vnni; True required (refused without it); False never",
    )
    integer_dot_product: bool | None = Field(
        default=None,
        description="cl_khr_integer_dot_product: None as the device reports it, False never, "
        "True required (refused on a device without it)",
    )
    batch_part: int = Field(
        default=0,
        ge=0,
        le=1024,
        description="images per part when a batch runs in parts (CPU devices); 0: what fits the cache",
    )
    overlap: bool | None = Field(
        default=None,
        description="run a batch's parts with uploads and downloads on a second queue, beside the "
        "compute; None: on GPUs only (on a CPU device the copies share the cores: measured slower)",
    )


class AutoOptions(Section):
    """OpenCL when it can run the model, else onnxruntime: the options of both."""

    type: Literal["auto"] = "auto"
    opencl: OpenCLOptions = Field(default_factory=OpenCLOptions)
    onnxruntime: OnnxRuntimeOptions = Field(default_factory=OnnxRuntimeOptions)


BackendOptions = Annotated[OnnxRuntimeOptions | OpenCLOptions | AutoOptions, Field(discriminator="type")]
# What a caller may pass where options are taken: a model, or a dict of one backend's keys.
OptionsInput = OnnxRuntimeOptions | OpenCLOptions | AutoOptions | Mapping[str, object] | None
_BY_KIND: dict[str, type[OnnxRuntimeOptions | OpenCLOptions | AutoOptions]] = {
    "onnxruntime": OnnxRuntimeOptions,
    "opencl": OpenCLOptions,
    "auto": AutoOptions,
}
_NAMES = {"onnxruntime": "onnxruntime", "opencl": "OpenCL", "auto": "auto"}
_ADAPTER: TypeAdapter[OnnxRuntimeOptions | OpenCLOptions | AutoOptions] = TypeAdapter(BackendOptions)

Opts = TypeVar("Opts", OnnxRuntimeOptions, OpenCLOptions, AutoOptions)


def parse_options(data: Mapping[str, object]) -> OnnxRuntimeOptions | OpenCLOptions | AutoOptions:
    """Options from a table with a ``type`` key (``{"type": "opencl", "fp16": true}``)."""
    kind = str(data.get("type", ""))
    try:
        return _ADAPTER.validate_python(dict(data))
    except ValidationError as exc:
        name = _NAMES.get(kind, kind or "backend")
        raise BackendError(f"bad {name} backend options: {'; '.join(problems_of(exc))}") from None


def options_as(model: type[Opts], options: OptionsInput) -> Opts:
    """``options`` as ``model``, the options of one backend kind; ``BackendError`` says what is wrong."""
    kind = model.model_fields["type"].default
    if isinstance(options, model):
        return options
    if isinstance(options, Section):
        raise BackendError(f"the {_NAMES[kind]} backend was given {type(options).__name__}")
    data = dict(options or {})
    data.pop("type", None)
    if model is AutoOptions:
        data = _split_for_auto(data)
    try:
        return validate(model, {**data, "type": kind})
    except ConfigError as exc:
        raise BackendError(f"bad {_NAMES[kind]} backend options: {'; '.join(exc.problems)}") from None


def _split_for_auto(data: dict[str, object]) -> dict[str, object]:
    if set(data) <= {"opencl", "onnxruntime"}:
        return data  # already one table per backend
    split: dict[str, dict[str, object]] = {"opencl": {}, "onnxruntime": {}}
    for key, value in data.items():
        owners = [kind for kind in split if key in _BY_KIND[kind].model_fields and key != "type"]
        if not owners:
            raise BackendError(
                f"bad auto backend options: {key!r} is an option of neither OpenCL nor onnxruntime"
            )
        for kind in owners:
            split[kind][key] = value
    return dict(split)
