"""JPEG decoding at the scale the models need.

libjpeg can decode at 1/2, 1/4 or 1/8 scale straight from the DCT coefficients (OpenCV's
``IMREAD_REDUCED_*``), which on a 12 MP frame is several times faster than a full decode followed by a
resize, and a full decode costs more than YOLOX-nano inference. Before any decoder runs, the header is
read (``inspect_jpeg``): a PNG or TIFF under a .jpg name, a truncated or empty file, and a
"decompression bomb" header are refused with a one-line reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from yaguar.protocol.jpeg import JpegError, inspect_jpeg

# A 12 MP camera makes 12e6 pixels; 50 MP covers every trail camera and refuses absurd headers.
DEFAULT_MAX_PIXELS = 50_000_000

_REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


class DecodeError(ValueError):
    """An image that cannot be decoded; ``reason`` is a short code for metrics, str() one line for logs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class DecodedImage:
    pixels: np.ndarray  # BGR uint8, at 1/scale of the original
    width: int  # original size, from the header
    height: int
    scale: int  # 1, 2, 4 or 8


def choose_scale(width: int, height: int, min_side: int) -> int:
    """The largest libjpeg reduction that keeps the decoded image's longer side at least ``min_side``."""
    longer = max(width, height)
    for scale in (8, 4, 2):
        if longer // scale >= min_side:
            return scale
    return 1


def decode_jpeg(
    data: bytes, min_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> DecodedImage:
    """Decode JPEG bytes, reduced so the longer side stays >= ``min_side`` (None: full size)."""
    try:
        info = inspect_jpeg(data, max_pixels=max_pixels)
    except JpegError as exc:
        raise DecodeError(exc.reason, str(exc)) from None
    scale = 1 if min_side is None else choose_scale(info.width, info.height, min_side)
    buffer = np.frombuffer(data, dtype=np.uint8)
    pixels = cv2.imdecode(buffer, _REDUCED[scale])
    if pixels is None:
        raise DecodeError("corrupt_jpeg", f"the JPEG ({info.width}x{info.height}) could not be decoded")
    return DecodedImage(pixels=pixels, width=info.width, height=info.height, scale=scale)


def read_image(path: Path, min_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Read and decode a file; errors name the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DecodeError("unreadable", f"{path.name}: cannot read ({exc.strerror})") from None
    try:
        return decode_jpeg(data, min_side=min_side, max_pixels=max_pixels)
    except DecodeError as exc:
        raise DecodeError(exc.reason, f"{path.name}: {exc}") from None
