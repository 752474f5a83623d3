"""Image preprocessing on the device (``kernels/preprocess.cl``): a uint8 HxWx3 image in, the
model's float input out: letterbox (aspect-preserving bilinear resize onto a padded canvas, as
YOLOX wants) or a plain resize (FastestDet), BGR<->RGB swap, per-channel ``v * mul + add``
normalisation, NCHW or NHWC layout. Saves the host a resize and a float conversion per frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyopencl as cl
import pyopencl.cltypes as clt

from ..base import BackendError
from .runtime import Runtime


@dataclass(frozen=True)
class PreprocessSpec:
    size: tuple[int, int]  # output (height, width)
    letterbox: bool = True  # keep the aspect ratio and pad (top-left placement), else stretch
    pad: float = 114.0  # pixel value of the canvas (normalised like the image's pixels)
    swap_rb: bool = False  # BGR (OpenCV) -> RGB
    mul: tuple[float, float, float] = (1.0, 1.0, 1.0)
    add: tuple[float, float, float] = (0.0, 0.0, 0.0)
    nchw: bool = True


class Preprocessor:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.kernel = cl.Kernel(runtime.program("preprocess"), "letterbox")

    def __call__(self, image: np.ndarray, spec: PreprocessSpec) -> tuple[np.ndarray, float]:
        """The model input [1, 3, H, W] (or [1, H, W, 3]) and the scale applied to the image."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise BackendError(f"preprocess wants a uint8 HxWx3 image, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        oh, ow = spec.size
        scale_y = scale_x = min(oh / h, ow / w) if spec.letterbox else 0.0
        if not spec.letterbox:
            scale_y, scale_x = oh / h, ow / w
        new_h, new_w = (int(h * scale_y), int(w * scale_x)) if spec.letterbox else (oh, ow)
        ctx, q = self.rt.context, self.rt.queue
        src = cl.Buffer(
            ctx, cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR, hostbuf=np.ascontiguousarray(image)
        )
        out = np.empty((1, 3, oh, ow) if spec.nchw else (1, oh, ow, 3), np.float32)
        dst = cl.Buffer(ctx, cl.mem_flags.WRITE_ONLY, out.nbytes)
        self.kernel.set_args(
            src, np.int32(h), np.int32(w), dst, np.int32(0), np.int32(oh), np.int32(ow),
            np.float32(new_w / w), np.float32(new_h / h), np.int32(0), np.int32(0), np.int32(new_w),
            np.int32(new_h), np.float32(spec.pad), np.int32(spec.swap_rb), clt.make_float4(*spec.mul, 0.0),
            clt.make_float4(*spec.add, 0.0), np.int32(spec.nchw),
        )  # fmt: skip
        cl.enqueue_nd_range_kernel(q, self.kernel, (ow, oh), None)
        cl.enqueue_copy(q, out, dst)
        return out, min(scale_y, scale_x) if spec.letterbox else scale_x
