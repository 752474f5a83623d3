"""The camera interface every backend implements: open, capture one JPEG, close."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime


class CameraError(RuntimeError):
    """A camera that cannot open or returned no image; the message is one line for a person."""


def local_now() -> datetime:
    """Now, timezone-aware, with the device's UTC offset (what the wire contract wants)."""
    return datetime.now().astimezone()


@dataclass(frozen=True)
class CapturedImage:
    """One JPEG as the camera made it, with its size and the moment it was taken."""

    jpeg: bytes
    width: int
    height: int
    captured_at: datetime = field(default_factory=local_now)


class Camera(ABC):
    """A source of JPEG frames. ``open`` and ``capture`` raise ``CameraError``; ``close`` never raises."""

    type_name: str = "camera"

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def capture(self) -> CapturedImage: ...

    @abstractmethod
    def close(self) -> None: ...

    @property
    @abstractmethod
    def is_open(self) -> bool: ...

    def describe(self) -> str:
        return self.type_name
