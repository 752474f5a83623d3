"""Make a frame fit what is sent: at most ``max_px`` on its longest side and ``max_bytes`` in size.

The camera's full-resolution JPEG is left untouched (it can stay on the Pi); only the copy that goes
over the radio is scaled and re-encoded, and only when it has to be (a re-encode costs CPU and power).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from yaguar.protocol.jpeg import exif_segment, with_exif

from .base import CameraError, CapturedImage

log = logging.getLogger(__name__)
_MIN_QUALITY = 30


def fit_for_sending(image: CapturedImage, max_px: int | None, quality: int, max_bytes: int) -> CapturedImage:
    """The image as it should be sent; the same object when it already fits."""
    too_wide = max_px is not None and max(image.width, image.height) > max_px
    if not too_wide and len(image.jpeg) <= max_bytes:
        return image
    try:
        import cv2
        import numpy as np
    except ImportError:
        raise CameraError(
            "frame too large to send and OpenCV (needed to shrink it) is not installed"
        ) from None
    # As stored, so the size matches the header's and the camera's EXIF (its orientation) still
    # describes the pixels: the station turns them as `yaguar detect` turns the camera's own file.
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(image.jpeg, dtype=np.uint8), flags)
    if pixels is None:
        raise CameraError("camera returned a JPEG that does not decode")
    if too_wide and max_px is not None:
        scale = max_px / max(image.width, image.height)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    exif = exif_segment(image.jpeg)
    while True:
        ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise CameraError("JPEG encoding failed")
        jpeg = with_exif(encoded.tobytes(), exif)
        if len(jpeg) <= max_bytes or quality <= _MIN_QUALITY:
            break
        quality = max(_MIN_QUALITY, quality - 15)
    if len(jpeg) > max_bytes:
        log.warning("frame is %d bytes even at quality %d (limit %d)", len(jpeg), quality, max_bytes)
    height, width = pixels.shape[:2]
    return replace(image, jpeg=jpeg, width=width, height=height)
