"""Inference backends behind one interface (``base.Backend``), found by ``registry.create_backend``."""

from .base import Backend, BackendError, TensorInfo
from .registry import backend_class, create_backend

__all__ = ["Backend", "BackendError", "TensorInfo", "backend_class", "create_backend"]
