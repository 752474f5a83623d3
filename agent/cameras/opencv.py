"""A USB (UVC) camera through OpenCV's ``VideoCapture``."""

from __future__ import annotations

import logging
from typing import Any

from .base import Camera, CameraError, CapturedImage, local_now

log = logging.getLogger(__name__)


class OpenCvCamera(Camera):
    type_name = "opencv"

    def __init__(
        self,
        device: int | str = 0,
        width: int | None = None,
        height: int | None = None,
        warmup_frames: int = 2,
        jpeg_quality: int = 90,
    ) -> None:
        self.device = device
        self.width = width
        self.height = height
        self.warmup_frames = warmup_frames
        self.jpeg_quality = jpeg_quality
        self._cap: Any = None

    def open(self) -> None:
        import cv2

        cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"USB camera {self.device!r} did not open (unplugged, or in use?)")
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        for _ in range(self.warmup_frames):
            cap.read()
        self._cap = cap

    def capture(self) -> CapturedImage:
        import cv2

        if self._cap is None:
            raise CameraError("USB camera is not open")
        captured_at = local_now()
        ok, frame = self._cap.read()
        if not ok or frame is None or frame.size == 0:
            raise CameraError(f"USB camera {self.device!r} returned nothing")
        ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise CameraError("JPEG encoding of the USB camera's frame failed")
        height, width = frame.shape[:2]
        return CapturedImage(encoded.tobytes(), width, height, captured_at)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    @property
    def is_open(self) -> bool:
        return self._cap is not None

    def describe(self) -> str:
        return f"USB camera {self.device!r}"
