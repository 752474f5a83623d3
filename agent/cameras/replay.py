"""A camera that plays back a folder of real JPEG files: for tests, the demo and the benchmarks."""

from __future__ import annotations

import logging
from pathlib import Path

from yaguar.protocol.jpeg import JpegError, inspect_jpeg

from .base import Camera, CameraError, CapturedImage, local_now

log = logging.getLogger(__name__)
JPEG_SUFFIXES = {".jpg", ".jpeg"}


class ReplayCamera(Camera):
    type_name = "replay"

    def __init__(self, folder: Path | str, loop: bool = True, skip_invalid: bool = True) -> None:
        self.folder = Path(folder)
        self.loop = loop
        self.skip_invalid = skip_invalid
        self._files: list[Path] = []
        self._next = 0
        self._open = False

    def open(self) -> None:
        if not self.folder.is_dir():
            raise CameraError(f"replay folder {self.folder} does not exist")
        files = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in JPEG_SUFFIXES and p.is_file())
        if self.skip_invalid:
            # An empty file in the folder would be "the camera returned nothing" on every pass.
            files = [p for p in files if p.stat().st_size > 0]
        if not files:
            raise CameraError(f"replay folder {self.folder} has no JPEG files")
        self._files = files
        self._next = 0
        self._open = True

    def capture(self) -> CapturedImage:
        if not self._open:
            raise CameraError("replay camera is not open")
        if self._next >= len(self._files):
            if not self.loop:
                raise CameraError(f"replay folder {self.folder} has no more files")
            self._next = 0
        path = self._files[self._next]
        self._next += 1
        captured_at = local_now()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CameraError(f"cannot read {path.name}: {exc.strerror or exc}") from None
        if not data:
            raise CameraError(f"camera returned nothing ({path.name} is empty)")
        try:
            info = inspect_jpeg(data)
        except JpegError as exc:
            raise CameraError(f"camera returned a bad image ({path.name}: {exc})") from None
        return CapturedImage(data, info.width, info.height, captured_at)

    def close(self) -> None:
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def describe(self) -> str:
        return f"replay of {self.folder}"
