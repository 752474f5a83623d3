"""Which clip recorder the agent runs: picamera2's hardware encoder on a Pi camera, else the generic
one (``clips.ClipRecorder``). Kept apart from ``clips`` so that the Pi's recorder, a subclass of the
generic one, never has to be imported back by the module it extends."""

from __future__ import annotations

from .cameras.base import Camera
from .cameras.picamera_clips import PicameraClipRecorder
from .clips import Clip, ClipRecorder, RecorderConfig, spool_clip
from .config import AgentConfig
from .metrics import AgentMetrics
from .spool import Spool


def make_recorder(
    config: AgentConfig, camera: Camera, spool: Spool, metrics: AgentMetrics
) -> ClipRecorder | None:
    """The agent's clip recorder, each finished clip spooled as chunks; None when clips are off."""
    clips = config.clips
    if not clips.enabled:
        return None
    settings = RecorderConfig(
        fps=clips.fps, pre_roll_s=clips.pre_roll_s, post_roll_s=clips.post_roll_s, width=clips.width
    )

    def hand_on(clip: Clip) -> None:
        spool_clip(spool, config.device_id, clip, clips.chunk_bytes)

    def count(reason: str) -> None:
        metrics.clips_quarantined.labels(reason).inc()

    if config.camera.type == "picamera2":  # the Pi's hardware encoder and picamera2's circular output
        return PicameraClipRecorder(camera, clips.dir, settings, on_clip=hand_on, on_quarantine=count)
    return ClipRecorder(camera, clips.dir, settings, on_clip=hand_on, on_quarantine=count)
