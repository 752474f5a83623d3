"""Backend registry: backends register by ``kind``; a backend whose imports fail is logged once and
left out, so the station starts on what this machine has."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from .base import Backend, BackendError, ModelSource
from .options import AutoOptions, OptionsInput, options_as

log = logging.getLogger(__name__)

# kind -> module that defines it. Imported lazily: pyopencl is optional.
_MODULES = {
    "onnxruntime": ("yaguar.engine.backends.onnxruntime_backend", "OnnxRuntimeBackend"),
    "opencl": ("yaguar.engine.backends.opencl", "OpenCLBackend"),
}
_unavailable: dict[str, str] = {}


def backend_class(kind: str) -> type[Backend]:
    if kind not in _MODULES:
        raise BackendError(f"unknown backend {kind!r}; choose one of {', '.join(sorted(_MODULES))} or 'auto'")
    if kind in _unavailable:
        raise BackendError(_unavailable[kind])
    module_name, class_name = _MODULES[kind]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        reason = f"the {kind} backend is not available: {exc}"
        _unavailable[kind] = reason
        log.warning("%s", reason)
        raise BackendError(reason) from None
    return getattr(module, class_name)


def create_backend(kind: str, model_path: ModelSource, options: OptionsInput = None) -> Backend:
    """Load a model on the named backend with its options (``options.py``). ``auto`` tries OpenCL,
    then falls back to onnxruntime and says why in one log line."""
    if kind != "auto":
        return backend_class(kind)(model_path, options)
    auto = options_as(AutoOptions, options)
    try:
        return backend_class("opencl")(model_path, auto.opencl)
    except BackendError as exc:
        name = Path(model_path).name if isinstance(model_path, Path | str) else "the rewritten model"
        log.info("%s: using onnxruntime instead (%s)", name, exc)
        return backend_class("onnxruntime")(model_path, auto.onnxruntime)
