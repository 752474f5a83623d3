"""Cameras behind one small interface, chosen by the ``type`` of the ``[camera]`` config section.

picamera2 is imported only when configured, so a machine without libcamera runs the agent with a USB or
replay camera.
"""

from __future__ import annotations

from ..config import CameraConfig, OpenCvCameraConfig, Picamera2Config, ReplayCameraConfig
from .base import Camera, CameraError, CapturedImage, local_now
from .replay import ReplayCamera


def make_camera(config: CameraConfig, jpeg_quality: int = 90) -> Camera:
    """The camera a config section describes (not yet opened)."""
    if isinstance(config, ReplayCameraConfig):
        return ReplayCamera(config.folder, loop=config.loop, skip_invalid=config.skip_invalid)
    if isinstance(config, OpenCvCameraConfig):
        from .opencv import OpenCvCamera

        return OpenCvCamera(config.device, config.width, config.height, config.warmup_frames, jpeg_quality)
    if isinstance(config, Picamera2Config):
        from .picamera import Picamera2Camera

        return Picamera2Camera(config.width, config.height, jpeg_quality)
    raise TypeError(f"unknown camera config {type(config).__name__}")


__all__ = ["Camera", "CameraError", "CapturedImage", "ReplayCamera", "local_now", "make_camera"]
