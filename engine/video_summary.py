"""A video in a few lines: what was in it, from when to when, and the frame that shows it best."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .analyser import FrameResult
from .sdcard import CaptureTime
from .video import VideoReader, frame_time


@dataclass(frozen=True)
class VideoFrameResult:
    name: str  # the frame's entry, video.mp4/frame000123.jpg
    extra: dict[str, Any]  # datetime, frame_time_s, ...
    result: FrameResult

    @property
    def time_s(self) -> float:
        return float(self.extra["frame_time_s"])


def summarise_video(
    name: str, reader: VideoReader, start: CaptureTime, frames: list[VideoFrameResult]
) -> dict[str, Any]:
    """Each species (or category, where no classifier named it) with its first and last sighting."""
    found: dict[str, dict[str, Any]] = {}
    best: tuple[float, str] | None = None
    for frame in frames:
        for det in frame.result.detections:
            key = det.species or det.category
            seen = found.get(key)
            if seen is None:
                seen = found[key] = {
                    "name": key,
                    "category": det.category,
                    "first_s": frame.time_s,
                    "first_time": frame_time(start, frame.time_s).isoformat(),
                    "frames": set(),
                    "best_conf": -1.0,
                }
            seen["last_s"] = frame.time_s
            seen["last_time"] = frame_time(start, frame.time_s).isoformat()
            seen["frames"].add(frame.name)
            if det.confidence > seen["best_conf"]:
                seen["best_conf"], seen["best_frame"] = float(det.confidence), frame.name
            if best is None or det.confidence > best[0]:
                best = (float(det.confidence), frame.name)
    species = sorted(found.values(), key=lambda s: (s["first_s"], s["name"]))
    for entry in species:
        entry["frames"] = len(entry["frames"])
    return {
        "file": name,
        "frame_rate": round(reader.fps, 3),
        "width": reader.width,
        "height": reader.height,
        "datetime_start": start.when.isoformat(),
        "datetime_source": start.source,
        "frames_sampled": len(frames),
        "frames_analysed": sum(1 for f in frames if f.result.state == "done"),
        "frames_without_motion": sum(1 for f in frames if f.result.reason == "no_motion"),
        "note": reader.note,
        "species": species,
        "best_frame": best[1] if best else None,
        "best_conf": best[0] if best else None,
    }
