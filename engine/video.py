"""Video files (MP4, AVI, MOV, MKV) read with PyAV: frames sampled at a fixed rate, shrunk as decoded.

Memory stays bounded whatever the video: frames are decoded one at a time and only the sampled ones
are converted, straight to the small size the detector needs (swscale does the shrink), so a 4K 60 fps
file costs what a 416-pixel one does. A file that is not a video, a truncated one (its index missing),
and one with no frames each get a one-line reason; a video whose tail is damaged keeps the frames read
before the damage, and says so.

Phone videos are stored sideways with a display rotation (the MP4 display matrix) that players apply.
MegaDetector reads video with OpenCV, whose FFmpeg reader turns such frames upright by default
(CAP_PROP_ORIENTATION_AUTO), so its boxes are in the upright frame; ours are too: the rotation is read
from the first decoded frame and every frame is turned by the same quarter turns. Like OpenCV, a
rotation that is not a multiple of 90 degrees is ignored (read as stored), and only the display
matrix counts: OpenCV ignores a bare ``rotate`` tag (e.g. in MKV), so we do as well.
"""

from __future__ import annotations

import itertools
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


class Orientation:
    """How to turn one video's frames upright: counter-clockwise quarter turns of the stored pixels."""

    def __init__(self, name: str) -> None:
        self.name = name  # for the log line
        self.turns: int | None = None  # known once the first frame is seen

    def of(self, frame: av.VideoFrame) -> int:
        """The quarter turns for this video, learnt from its first frame (the rotation is per stream)."""
        if self.turns is None:
            degrees = int(frame.rotation)  # counter-clockwise, -180..180; 0 without a display matrix
            if degrees % 90:
                log.warning(
                    "%s: display rotation of %d degrees ignored, frames read as stored", self.name, degrees
                )
                self.turns = 0
            else:
                self.turns = degrees // 90 % 4
        return self.turns

    def upright(self, frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
        """The frame as BGR, scaled to ``width`` x ``height`` (its stored orientation), then turned."""
        pixels = frame.to_ndarray(format="bgr24", width=width, height=height)
        turns = self.of(frame)
        return np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels


@dataclass(frozen=True)
class SampledFrame:
    index: int  # frame number in the video, from 0
    time_s: float  # seconds from the start of the video
    pixels: np.ndarray  # BGR uint8, upright, shrunk so the longer side is about min_side


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
        # The first frame is decoded now: its display rotation decides the upright width and height.
        self.orientation = Orientation(self.path.name)
        self._decoded = self._container.decode(self._stream)
        try:
            self._first: av.VideoFrame | None = next(self._decoded, None)
        except (av.error.FFmpegError, EOFError) as exc:
            self._container.close()
            raise _open_error(exc, self.path) from None
        if self._first is None:
            self._container.close()
            raise VideoError("no_frames", "the video has no frames (0 seconds long)")
        self.stored = (self.width, self.height)  # as encoded; width and height are as shown
        if self.orientation.of(self._first) % 2:
            self.width, self.height = self.height, self.width

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

    def _stored_size(self, min_side: int | None) -> tuple[int, int]:
        """The size to scale the stored frames to, before they are turned upright."""
        width, height = self.stored
        longer = max(width, height)
        if not min_side or longer <= min_side:
            return width, height
        scale = min_side / longer
        return max(2, round(width * scale)) // 2 * 2, max(2, round(height * scale)) // 2 * 2

    def frames(self, every_s: float, min_side: int | None = None) -> Iterator[SampledFrame]:
        """Sampled frames in order, upright; VideoError when none can be decoded. Read once per reader."""
        width, height = self._stored_size(min_side)
        first, self._first = self._first, None
        next_t, index, sampled = 0.0, -1, 0
        try:
            for frame in itertools.chain([first] if first is not None else [], self._decoded):
                index += 1
                time_s = float(frame.time) if frame.time is not None else index / (self.fps or 1.0)
                if time_s + 1e-6 < next_t:
                    continue
                while next_t <= time_s + 1e-6:
                    next_t += every_s
                sampled += 1
                pixels = self.orientation.upright(frame, width, height)
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
