"""Clips on a Raspberry Pi: the camera's hardware H.264 encoder into picamera2's ``CircularOutput``.

The same clip recorder as everywhere (markers, ``.h264.part`` files, recovery after a crash, the MP4
remux, the hand-on to the spool), with the ring kept by picamera2 instead of PyAV: the GPU encodes, so
the CPU stays free, which is what makes pre-roll affordable on a Pi. Imported only when the camera is
``picamera2``. Not exercised by the test suite (no Pi camera there); ``ClipRecorder`` is.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from ..clips import PART, ClipRecorder, finished_clips
from .base import CameraError, local_now

log = logging.getLogger(__name__)


class PicameraClipRecorder(ClipRecorder):
    def start(self) -> PicameraClipRecorder:
        self.recover()
        try:
            from picamera2 import Picamera2
            from picamera2.encoders import H264Encoder
            from picamera2.outputs import CircularOutput
        except ImportError as exc:
            raise CameraError(f"picamera2 is not installed ({exc}); apt install python3-picamera2") from None
        fps = self.config.fps
        frame_us = int(1_000_000 / fps)
        width = self.config.width // 2 * 2
        height = round(width * 3 / 4) // 2 * 2
        try:
            camera = Picamera2()
            video = camera.create_video_configuration(main={"size": (width, height)})
            video["controls"]["FrameDurationLimits"] = (frame_us, frame_us)
            camera.configure(video)
            # Headers on every keyframe, a keyframe every keyframe_s: a clip can start anywhere in the ring.
            encoder = H264Encoder(repeat=True, iperiod=max(1, round(fps * self.config.keyframe_s)))
            ring = CircularOutput(
                buffersize=int(fps * (self.config.pre_roll_s + self.config.keyframe_s)), outputtofile=False
            )
            camera.start_recording(encoder, ring)
        except Exception as exc:  # libcamera raises many types; all mean "no camera"
            raise CameraError(f"Pi camera did not start recording: {str(exc)[:160]}") from None
        self._picamera: Any = camera
        self._circular: Any = ring
        self._timer: threading.Timer | None = None
        self._clip_id: str | None = None
        for clip in finished_clips(self.out_dir):
            self._hand_on(clip)
        return self

    def is_alive(self) -> bool:
        return getattr(self, "_picamera", None) is not None

    def trigger(self, kind: str, event_id: str | None = None) -> str:
        with self._lock:
            if self._clip_id is not None:
                return self._clip_id
            now = local_now()
            started = now - timedelta(seconds=self.config.pre_roll_s)  # what the ring holds
            clip_id = self._begin(kind, event_id, now, started)
            self._circular.fileoutput = str(self.out_dir / f"{clip_id}{PART}")
            self._circular.start()  # writes the ring, then every new frame, to the part file
            self._clip_id = clip_id
            self._timer = threading.Timer(self.config.post_roll_s, self._end, kwargs={"truncated": False})
            self._timer.daemon = True
            self._timer.start()
            return clip_id

    def _end(self, truncated: bool) -> None:
        with self._lock:
            clip_id, self._clip_id = self._clip_id, None
            if clip_id is None:
                return
            self._circular.stop()
            clip = self._finish_part(clip_id, truncated)
        if clip is not None:
            self._hand_on(clip)

    def stop(self) -> None:
        if getattr(self, "_picamera", None) is None:
            return  # never started
        if self._timer is not None:
            self._timer.cancel()
        self._end(truncated=True)
        try:
            self._picamera.stop_recording()
            self._picamera.close()
        except Exception as exc:
            log.debug("closing the Pi camera: %s", exc)
        self._picamera = None
