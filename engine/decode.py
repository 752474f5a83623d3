"""JPEG decoding at the scale the models need.

libjpeg can decode at 1/2, 1/4 or 1/8 scale straight from the DCT coefficients (OpenCV's
``IMREAD_REDUCED_*``), which on a 12 MP frame is several times faster than a full decode followed by a
resize, and a full decode costs more than YOLOX-nano inference. Before any decoder runs, the header is
read (``inspect_jpeg``): a PNG or TIFF under a .jpg name, a truncated or empty file, and a
"decompression bomb" header are refused with a one-line reason.

Pictures are turned upright by their EXIF orientation exactly as MegaDetector's loader turns them
(``upright``), so the boxes of the station and of ``yaguar detect`` are in MegaDetector's frame.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from yaguar.protocol.jpeg import JpegError, inspect_jpeg

# A 12 MP camera makes 12e6 pixels; 50 MP covers every trail camera and refuses absurd headers.
DEFAULT_MAX_PIXELS = 50_000_000

_REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}

# EXIF orientation as MegaDetector's loader applies it (visualization_utils.open_image, Pillow's
# ``_getexif``): 3, 6 and 8 are turned upright; the mirrored ones (2, 4, 5, 7) stay as stored (it
# asserts they are unsupported and ignores its own assert), and so do GIF and BMP, whose Pillow readers
# have no EXIF. Pillow turns a TIFF by all eight itself when it loads it, for MegaDetector and here
# alike (engine/stills.py). OpenCV would turn all eight, so it is told to ignore the tag.
ORIENTATION = 0x0112
# What Pillow raises on a header or an EXIF block it cannot read
PILLOW_ERRORS = (
    UnidentifiedImageError,
    Image.DecompressionBombError,
    OSError,
    SyntaxError,
    ValueError,
    KeyError,
    TypeError,
)
_UPRIGHT = {3: cv2.ROTATE_180, 6: cv2.ROTATE_90_CLOCKWISE, 8: cv2.ROTATE_90_COUNTERCLOCKWISE}
MIRRORED = frozenset({2, 4, 5, 7})
_EXIF_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP"})


class DecodeError(ValueError):
    """An image that cannot be decoded; ``reason`` is a short code for metrics, str() one line for logs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class DecodedImage:
    pixels: np.ndarray  # BGR uint8, at 1/scale of the original
    width: int  # full size, upright (as the pixels are)
    height: int
    scale: int  # 1, 2, 4 or 8


def choose_scale(width: int, height: int, min_side: int) -> int:
    """The largest libjpeg reduction that keeps the decoded image's longer side at least ``min_side``."""
    longer = max(width, height)
    for scale in (8, 4, 2):
        if longer // scale >= min_side:
            return scale
    return 1


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1-8) as MegaDetector's loader reads it: 1 where there is none, where
    the format's Pillow reader has no EXIF, or where it cannot be read (MegaDetector leaves those as
    stored). Only the header is read (about 0.2 ms on a 12 MP JPEG)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return orientation_of(image)
    except PILLOW_ERRORS:
        return 1


def orientation_of(image: Image.Image) -> int:
    """``exif_orientation`` of a picture Pillow has open already (its header is not read again)."""
    if image.format not in _EXIF_FORMATS:
        return 1
    try:
        value = image.getexif().get(ORIENTATION, 1)
    except PILLOW_ERRORS:
        return 1
    return value if value in range(1, 9) else 1


def upright_turn(orientation: int) -> int | None:
    """The ``cv2.rotate`` code that turns a picture of this EXIF orientation as MegaDetector turns it;
    None: as stored."""
    return _UPRIGHT.get(orientation)


def upright(pixels: np.ndarray, width: int, height: int, scale: int, turn: int | None) -> DecodedImage:
    """The decoded picture turned by ``upright_turn``'s code, its full size turned alike."""
    if turn is None:
        return DecodedImage(pixels=pixels, width=width, height=height, scale=scale)
    if turn != cv2.ROTATE_180:
        width, height = height, width
    return DecodedImage(pixels=cv2.rotate(pixels, turn), width=width, height=height, scale=scale)


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
    pixels = cv2.imdecode(buffer, _REDUCED[scale] | cv2.IMREAD_IGNORE_ORIENTATION)
    if pixels is None:
        raise DecodeError("corrupt_jpeg", f"the JPEG ({info.width}x{info.height}) could not be decoded")
    return upright(pixels, info.width, info.height, scale, upright_turn(exif_orientation(data)))


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
