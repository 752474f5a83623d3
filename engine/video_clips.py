"""``yaguar detect --clips OUT/``: short MP4 clips around what was found in a video, boxes drawn.

Sampled frames with detections close in time make one segment; each clip runs from a second before
the segment's first detection to a second after its last. Every frame of the clip shows the boxes of
the latest sampled frame at or before it (boxes are only known on sampled frames).
"""

from __future__ import annotations

import logging
from pathlib import Path

import av
import cv2
import numpy as np

from .detector import Detection
from .video import Orientation
from .video_summary import VideoFrameResult

log = logging.getLogger(__name__)

PAD_S = 1.0  # seconds of video kept before the first and after the last detection
JOIN_S = 3.0  # detections closer than this share one clip
MAX_SIDE = 1280  # clips are for a person to look at, not for analysis
COLOURS = {"animal": (60, 200, 60), "person": (40, 40, 230), "vehicle": (230, 160, 40)}


def segments(frames: list[VideoFrameResult]) -> list[tuple[float, float]]:
    """(start_s, end_s) of each run of sampled frames with detections."""
    times = [f.time_s for f in frames if f.result.detections]
    spans: list[list[float]] = []
    for time_s in times:
        if spans and time_s - spans[-1][1] <= JOIN_S:
            spans[-1][1] = time_s
        else:
            spans.append([time_s, time_s])
    return [(max(0.0, a - PAD_S), b + PAD_S) for a, b in spans]


def draw_boxes(image: np.ndarray, detections: list[Detection]) -> np.ndarray:
    height, width = image.shape[:2]
    for det in detections:
        x, y, w, h = det.bbox
        colour = COLOURS.get(det.category, (255, 255, 255))
        top_left = (int(x * width), int(y * height))
        cv2.rectangle(image, top_left, (int((x + w) * width), int((y + h) * height)), colour, 2)
        label = f"{det.species or det.category} {det.confidence:.2f}"
        cv2.putText(
            image, label, (top_left[0], max(12, top_left[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1
        )
    return image


def export_clips(
    video: Path, name: str, frames: list[VideoFrameResult], out_dir: Path, orientation: Orientation
) -> list[str]:
    """Write one MP4 per segment into ``out_dir``; the clip file names, relative to it. ``orientation``
    is the reader's: the clips are turned upright as the analysed frames were, so the boxes fit."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    stem = name.replace("/", "__").rsplit(".", 1)[0]
    for number, (start_s, end_s) in enumerate(segments(frames), 1):
        target = out_dir / f"{stem}_clip{number:02d}_{start_s:07.1f}s.mp4"
        try:
            _write_clip(video, target, start_s, end_s, frames, orientation)
        except (av.error.FFmpegError, OSError) as exc:
            log.warning("%s: clip %d not written (%s)", name, number, exc)
            continue
        written.append(target.name)
    return written


def _boxes_at(frames: list[VideoFrameResult], time_s: float) -> list[Detection]:
    current: list[Detection] = []
    for frame in frames:
        if frame.time_s > time_s + 1e-6:
            break
        current = frame.result.detections
    return current


def _write_clip(
    video: Path,
    target: Path,
    start_s: float,
    end_s: float,
    frames: list[VideoFrameResult],
    orientation: Orientation,
) -> None:
    with av.open(str(video)) as source:
        stream = source.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or 10
        width, height = stream.codec_context.width, stream.codec_context.height
        if max(width, height) > MAX_SIDE:  # the longer side, whichever way the video is shown
            scale = MAX_SIDE / max(width, height)
            width, height = round(width * scale), round(height * scale)
        width, height = width // 2 * 2, height // 2 * 2
        source.seek(int(start_s * av.time_base))  # to the keyframe at or before start_s
        tmp = target.with_name(target.name + ".part.mp4")
        with av.open(str(tmp), mode="w") as sink:
            out = sink.add_stream("libx264", rate=rate)
            out.pix_fmt = "yuv420p"
            out.options = {"preset": "veryfast", "crf": "26"}
            started = False
            for frame in source.decode(stream):
                time_s = float(frame.time or 0.0)
                if time_s + 1e-6 < start_s:
                    continue
                if time_s > end_s + 1e-6:
                    break
                image = orientation.upright(frame, width, height)
                if not started:  # the clip is upright: its size is known from the first frame
                    out.height, out.width = image.shape[:2]
                    started = True
                drawn = av.VideoFrame.from_ndarray(
                    draw_boxes(image, _boxes_at(frames, time_s)), format="bgr24"
                )
                for packet in out.encode(drawn):
                    sink.mux(packet)
            for packet in out.encode():
                sink.mux(packet)
        tmp.replace(target)
