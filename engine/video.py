"""Video files (MP4, AVI, MOV, MKV) read with PyAV: frames sampled at a fixed rate, shrunk as decoded.

Memory stays bounded whatever the video: frames are decoded one at a time and only the sampled ones
are converted, straight to the small size the detector needs (swscale does the shrink), so a 4K 60 fps
file costs what a 416-pixel one does. A file that is not a video, a truncated one (its index missing),
and one with no frames each get a one-line reason; a video whose tail is damaged keeps the frames read
before the damage, and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import av.error
import numpy as np

from .decode import DecodeError
from .sdcard import FROM_FILE_TIME, CaptureTime, file_time

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv"})
FROM_VIDEO_METADATA = "video_metadata"  # the container's creation_time


class VideoError(DecodeError):
    """A video that cannot be read; ``reason`` is a short code, str() one line for people."""


@dataclass(frozen=True)
class SampledFrame:
    index: int  # frame number in the video, from 0
    time_s: float  # seconds from the start of the video
    pixels: np.ndarray  # BGR uint8, shrunk so the longer side is about min_side


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def frame_name(video_name: str, index: int) -> str:
    """MegaDetector's convention for a video frame's entry: ``folder/video.mp4/frame000123.jpg``."""
    return f"{video_name}/frame{index:06d}.jpg"


def _looks_like_video(path: Path) -> bool:
    """Container magic bytes: MP4/MOV (``ftyp`` box), AVI (RIFF AVI), MKV (EBML)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    return (
        head[4:8] == b"ftyp"
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
        or head[:4] == b"\x1aE\xdf\xa3"
    )


def _open_error(exc: Exception, path: Path) -> VideoError:
    if isinstance(exc, av.error.InvalidDataError | EOFError):
        if _looks_like_video(path):
            return VideoError("truncated_video", "the video is truncated or damaged (cannot read its index)")
        return VideoError("not_video", f"the file is named {path.suffix} but is not a video")
    text = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
    return VideoError("unreadable_video", f"the video cannot be opened ({text})")


class VideoReader:
    """One video: its properties, and its frames sampled every ``every_s`` seconds."""

    def __init__(self, path: Path, max_pixels: int) -> None:
        self.path = Path(path)
        if self.path.stat().st_size == 0:
            raise VideoError("empty_payload", "the video is empty (0 bytes)")
        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, EOFError, ValueError) as exc:
            raise _open_error(exc, self.path) from None
        if not self._container.streams.video:
            self._container.close()
            raise VideoError("no_frames", "the video has no frames (0 seconds long, or sound only)")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self.width = int(self._stream.codec_context.width or 0)
        self.height = int(self._stream.codec_context.height or 0)
        if self.width * self.height > max_pixels:
            self._container.close()
            raise VideoError("too_large", f"the video is {self.width}x{self.height}, too large to decode")
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.note: str | None = None  # set when the tail could not be decoded

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def start_time(self) -> CaptureTime:
        """When recording began: the container's creation_time, else the file time (recorded as such)."""
        stamp = self._container.metadata.get("creation_time") or self._stream.metadata.get("creation_time")
        if stamp:
            try:
                when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
                return CaptureTime(when if when.tzinfo else when.replace(tzinfo=UTC), FROM_VIDEO_METADATA)
            except ValueError:
                log.info("%s: creation_time %r unreadable", self.path.name, stamp)
        found = file_time(self.path, "no creation time in the video")
        assert found.source == FROM_FILE_TIME
        return found

    def _size(self, min_side: int | None) -> tuple[int, int]:
        longer = max(self.width, self.height)
        if not min_side or longer <= min_side:
            return self.width, self.height
        scale = min_side / longer
        return max(2, round(self.width * scale)) // 2 * 2, max(2, round(self.height * scale)) // 2 * 2

    def frames(self, every_s: float, min_side: int | None = None) -> Iterator[SampledFrame]:
        """Sampled frames in order; VideoError when the video has none at all."""
        width, height = self._size(min_side)
        next_t, index, sampled = 0.0, -1, 0
        try:
            for frame in self._container.decode(self._stream):
                index += 1
                time_s = float(frame.time) if frame.time is not None else index / (self.fps or 1.0)
                if time_s + 1e-6 < next_t:
                    continue
                while next_t <= time_s + 1e-6:
                    next_t += every_s
                sampled += 1
                pixels = frame.to_ndarray(format="bgr24", width=width, height=height)
                yield SampledFrame(index, round(time_s, 3), pixels)
        except (av.error.FFmpegError, EOFError) as exc:
            if sampled == 0:
                raise _open_error(exc, self.path) from None
            self.note = f"decoding stopped after {index} frames: the rest of the video is damaged"
            log.warning("%s: %s", self.path.name, self.note)
        if sampled == 0:
            raise VideoError("no_frames", "the video has no frames (0 seconds long)")


def frame_time(start: CaptureTime, time_s: float) -> datetime:
    return start.when + timedelta(seconds=time_s)
