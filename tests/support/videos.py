"""Real encoded video for tests: MP4/H.264 and MJPEG AVI made with PyAV from real frames."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.support.engine import read_bgr


def write_video(
    path: Path,
    frames: list[np.ndarray],
    fps: int,
    codec: str = "libx264",
    repeat: int = 1,
    creation_time: str | None = None,
    rotation: float | None = None,
) -> Path:
    """Encode BGR frames (each shown ``repeat`` times) into ``path``; the container follows the suffix.
    ``rotation``: a display matrix turning the stored frames counter-clockwise, as a phone writes."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        if creation_time:
            container.metadata["creation_time"] = creation_time
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width // 2 * 2, height // 2 * 2
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        count = 0
        for image in frames:
            frame = av.VideoFrame.from_ndarray(image[: stream.height, : stream.width], format="bgr24")
            if codec != "mjpeg":  # convert once, not once per repeat (the MJPEG encoder wants its own)
                frame = frame.reformat(format=stream.pix_fmt)
            for _ in range(repeat):
                frame.pts, frame.time_base = count, Fraction(1, fps)
                count += 1
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def heron_frames(shared_data: Path, reduce: int = 4) -> list[np.ndarray]:
    """The real 10-frame infrared burst of a grey heron (Camtrap DP example), about 1 s apart."""
    media = shared_data / "camtrap-dp-1.0.2" / "example" / "media"
    return [read_bgr(p, reduce) for p in sorted(media.glob("*.JPG"))]
