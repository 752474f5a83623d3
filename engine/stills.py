"""Pictures that are not JPEG: PNG (OpenCV), TIFF, BMP, GIF (its first frame) and WebP (Pillow), and
HEIC/HEIF (pillow-heif, where installed). MegaDetector's batch runner reads .jpg .jpeg .gif .png .tif
.tiff .bmp (its ``IMG_EXTENSIONS``); WebP and HEIC are read too, as phones and editors write them.

JPEG keeps its fast reduced decode (``decode.decode_jpeg``); the others are decoded whole, their size
checked from the header first (a decompression bomb is refused before it is allocated), turned upright
as MegaDetector turns them (``decode.upright``), then shrunk to the size the detector needs.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .decode import (
    DecodedImage,
    DecodeError,
    choose_scale,
    decode_jpeg,
    orientation_of,
    upright,
    upright_turn,
)
from .sdcard import HEIF_AVAILABLE

JPEG_SUFFIXES = frozenset({".jpg", ".jpeg"})
PNG_SUFFIXES = frozenset({".png"})
HEIF_SUFFIXES = frozenset({".heic", ".heif"})
PILLOW_SUFFIXES = frozenset({".tif", ".tiff", ".bmp", ".gif", ".webp"})
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_END = b"\xff\xd9"  # EOI: the marker a JPEG cut short lacks
# The first bytes of each kind, by the suffix that stands for the kind here
_MAGIC = (
    (b"\xff\xd8", ".jpg"),
    (PNG_MAGIC, ".png"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"GIF8", ".gif"),
    (b"BM", ".bmp"),
)
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"})
_SAME_KIND = {".jpeg": ".jpg", ".tiff": ".tif", ".heif": ".heic"}
_KIND_NAMES = {".jpg": "JPEG", ".tif": "TIFF", ".webp": "WebP"}


def kind_name(suffix: str) -> str:
    """What a person calls the kind that ``kind_suffix`` returns: JPEG, PNG, TIFF, WebP, ..."""
    return _KIND_NAMES.get(suffix, suffix[1:].upper())


def still_suffixes() -> frozenset[str]:
    """The picture types this installation can read."""
    heif = HEIF_SUFFIXES if HEIF_AVAILABLE else frozenset()
    return JPEG_SUFFIXES | PNG_SUFFIXES | PILLOW_SUFFIXES | heif


def kind_suffix(data: bytes, suffix: str) -> str:
    """The suffix of the kind of picture ``data`` holds, whatever its name says, as MegaDetector (Pillow)
    reads a file: a PNG named .jpg, a JPEG named .png, a WebP saved from the web as .jpg. The name's
    own suffix (one per kind: .jpeg is .jpg) where the first bytes are of no kind known here."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return ".heic"
    return _SAME_KIND.get(suffix.lower(), suffix.lower())


def decode_still(data: bytes, suffix: str, min_side: int | None, max_pixels: int) -> DecodedImage:
    """Decode a picture by the kind it holds (``kind_suffix``); DecodeError with a one-line reason."""
    suffix = kind_suffix(data, suffix)
    kind = kind_name(suffix)
    if suffix in JPEG_SUFFIXES:
        return decode_jpeg(data, min_side, max_pixels)
    if not data:
        raise DecodeError("empty_payload", "the image is empty (0 bytes)")
    if suffix in PNG_SUFFIXES and not data.startswith(PNG_MAGIC):
        raise DecodeError("not_png", "the file is named .png but is not a PNG")
    if suffix == ".heic" and not HEIF_AVAILABLE:
        raise DecodeError("no_decoder", "HEIC needs pillow-heif, which is not installed")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise DecodeError("too_large", f"the image header says {width}x{height}, too large to decode")
            turn = upright_turn(orientation_of(image))
            if suffix in PNG_SUFFIXES:
                flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION  # turned below, as MegaDetector does
                pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
            else:  # a GIF's or a TIFF's first frame (Pillow opens there)
                pixels = _pillow_pixels(image, kind)
    except DecodeError:
        raise
    except UnidentifiedImageError:  # Pillow's own message names a BytesIO object, not the file
        raise DecodeError(
            "corrupt_image", f"the {kind} could not be decoded (damaged, or not a {kind})"
        ) from None
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        raise DecodeError("corrupt_image", f"the {kind} could not be decoded ({exc})") from None
    if pixels is None:
        raise DecodeError("corrupt_image", f"the {kind} could not be decoded")
    # the reductions a JPEG gets (engine/decode.py), so a PNG gives the detector the pixels a JPEG would
    scale = 1 if min_side is None else choose_scale(width, height, min_side)
    if scale > 1:
        pixels = cv2.resize(pixels, (width // scale, height // scale), interpolation=cv2.INTER_AREA)
    return upright(pixels, width, height, scale, turn)


def _pillow_pixels(image: Image.Image, kind: str) -> np.ndarray:
    """BGR uint8. A 16-bit grey picture (a scientific or thermal TIFF) keeps its top 8 bits, as OpenCV
    reads a 16-bit PNG; Pillow's own conversion would clip it to white. 32-bit values are no camera's."""
    if image.mode.startswith("I;16"):
        grey = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if image.mode in ("I", "F"):
        raise DecodeError(
            "unsupported_image", f"the {kind} holds 32-bit values (mode {image.mode}), not a photo"
        )
    return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)


def is_still(path: Path) -> bool:
    return path.suffix.lower() in still_suffixes()
