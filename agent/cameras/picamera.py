"""The Raspberry Pi camera through picamera2 (libcamera). Imported only when configured, so the agent
installs and starts on machines without libcamera."""

from __future__ import annotations

import io
import logging
from typing import Any

from .base import Camera, CameraError, CapturedImage, local_now

log = logging.getLogger(__name__)


class Picamera2Camera(Camera):
    type_name = "picamera2"

    def __init__(self, width: int = 2028, height: int = 1520, jpeg_quality: int = 90) -> None:
        self.width = width
        self.height = height
        self.jpeg_quality = jpeg_quality
        self._cam: Any = None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraError(f"picamera2 is not installed ({exc}); apt install python3-picamera2") from None
        try:
            cam = Picamera2()
            cam.configure(cam.create_still_configuration(main={"size": (self.width, self.height)}))
            cam.options["quality"] = self.jpeg_quality
            cam.start()
        except Exception as exc:  # libcamera raises many types; all mean "no camera"
            raise CameraError(f"Pi camera did not open: {str(exc)[:160]}") from None
        self._cam = cam

    def capture(self) -> CapturedImage:
        if self._cam is None:
            raise CameraError("Pi camera is not open")
        captured_at = local_now()
        buffer = io.BytesIO()
        try:
            self._cam.capture_file(buffer, format="jpeg")
        except Exception as exc:
            raise CameraError(f"Pi camera capture failed: {str(exc)[:160]}") from None
        data = buffer.getvalue()
        if not data:
            raise CameraError("Pi camera returned nothing")
        return CapturedImage(data, self.width, self.height, captured_at)

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.close()
            except Exception as exc:
                log.debug("closing the Pi camera: %s", exc)
            self._cam = None

    @property
    def is_open(self) -> bool:
        return self._cam is not None
