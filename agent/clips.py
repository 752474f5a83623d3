"""Video clips on the agent: an H.264 ring buffer with pre-roll, so a clip starts seconds before the PIR.

The camera feeds an H.264 encoder (PyAV, libx264) at a steady frame rate; the encoded packets of the
last ``pre_roll_s`` seconds (back to a keyframe, so a clip always starts decodable) stay in a RAM
ring, as picamera2's ``CircularOutput`` keeps them on a Pi. A trigger writes the ring to
``clips/<clip_id>.h264.part`` and appends the next ``post_roll_s`` seconds to it as they are encoded;
then the raw H.264 is put into an MP4 (no re-encoding), written atomically, and handed on.

Crash safety: the ``.part`` file and its ``.json`` marker are on disk from the trigger on. An agent
killed mid-clip finds them at the next start: what was written is remuxed into a (shorter) clip, marked
``truncated``; a part with nothing decodable is moved to ``clips/quarantine`` with the reason.
"""

from __future__ import annotations

import collections
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import cv2
import numpy as np
from av.video.codeccontext import VideoCodecContext

from yaguar.durable import atomic_write
from yaguar.protocol.clip import split_clip

from .cameras.base import Camera, CameraError, local_now
from .spool import Spool

log = logging.getLogger(__name__)

PART = ".h264.part"


@dataclass(frozen=True)
class RecorderConfig:
    fps: float = 10.0
    pre_roll_s: float = 3.0
    post_roll_s: float = 5.0
    width: int = 1280  # frames are shrunk to this width (clips are for people; analysis samples them)
    keyframe_s: float = 1.0  # a keyframe this often: the pre-roll starts at most this much earlier
    crf: int = 28


@dataclass(frozen=True)
class Clip:
    clip_id: str
    path: Path  # the finished MP4
    meta: dict[str, Any]  # clip_id, trigger, started_at, trigger_at, pre_roll_s, frames, truncated


@dataclass
class _Packet:
    data: bytes
    keyframe: bool
    at: datetime  # capture time of the frame


class ClipRecorder:
    """Runs the camera into the ring on its own thread; ``trigger`` starts a clip."""

    def __init__(
        self,
        camera: Camera,
        out_dir: Path,
        config: RecorderConfig | None = None,
        on_clip: Callable[[Clip], None] | None = None,
        on_quarantine: Callable[[str], None] | None = None,
    ) -> None:
        self.camera = camera
        self.out_dir = Path(out_dir)
        self.config = config or RecorderConfig()
        self.on_clip = on_clip
        self.on_quarantine = on_quarantine  # called with the reason's code (the agent counts them)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._ring: collections.deque[_Packet] = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clip-recorder", daemon=True)
        self._encoder: VideoCodecContext | None = None
        self._recording: tuple[str, Any, datetime, int] | None = None  # clip id, file, end time, frames
        self.clips: list[Clip] = []
        self.frames_encoded = 0

    # --- life cycle -----------------------------------------------------------------------------
    def start(self) -> ClipRecorder:
        self.recover()
        for clip in finished_clips(self.out_dir):  # cut by a crash, or finished but never handed on
            self._hand_on(clip)
        self.camera.open()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        with self._lock:
            if self._recording is not None:
                self._finish(truncated=True)
        self.camera.close()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def trigger(self, kind: str, event_id: str | None = None) -> str:
        """Start a clip now (a trigger while recording extends nothing: that clip goes on)."""
        with self._lock:
            if self._recording is not None:
                return self._recording[0]
            now = local_now()
            packets = self._pre_roll()
            clip_id = self._begin(kind, event_id, now, packets[0].at if packets else now)
            part = (self.out_dir / f"{clip_id}{PART}").open("wb")
            for packet in packets:
                part.write(packet.data)
            end = now + timedelta(seconds=self.config.post_roll_s)
            self._recording = (clip_id, part, end, len(packets))
            return clip_id

    def _begin(self, kind: str, event_id: str | None, now: datetime, started: datetime) -> str:
        """A new clip's id, its marker written durably (what ``recover`` finds after a crash)."""
        clip_id = f"clip-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        marker = {
            "clip_id": clip_id,
            "event_id": event_id or clip_id,
            "trigger": kind,
            "started_at": started.isoformat(),
            "trigger_at": now.isoformat(),
            "fps": self.config.fps,
            "pre_roll_s": round((now - started).total_seconds(), 3),
        }
        atomic_write(self.out_dir / f"{clip_id}.json", json.dumps(marker).encode())
        log.info("clip %s: %s trigger, %.1f s of pre-roll", clip_id, kind, marker["pre_roll_s"])
        return clip_id

    # --- the camera loop ------------------------------------------------------------------------
    def _run(self) -> None:
        period = 1.0 / self.config.fps
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                image = self.camera.capture()
            except CameraError as exc:
                log.warning("clip recorder: %s", exc)
                self._stop.wait(1.0)
                continue
            pixels = cv2.imdecode(np.frombuffer(image.jpeg, np.uint8), cv2.IMREAD_COLOR)
            if pixels is not None:
                self._encode(pixels, image.captured_at)
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _open_encoder(self, width: int, height: int) -> VideoCodecContext:
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.framerate = Fraction(round(self.config.fps))
        encoder.time_base = Fraction(1, round(self.config.fps))
        keyint = max(1, round(self.config.fps * self.config.keyframe_s))
        # Headers on every keyframe: a clip can start at any keyframe of the ring and still decode.
        encoder.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "crf": str(self.config.crf),
            "x264-params": f"keyint={keyint}:min-keyint={keyint}:repeat-headers=1:scenecut=0",
        }
        return encoder

    def _encode(self, pixels: np.ndarray, at: datetime) -> None:
        height, width = pixels.shape[:2]
        if width > self.config.width:
            height = round(height * self.config.width / width)
            width = self.config.width
        width, height = width // 2 * 2, height // 2 * 2
        if self._encoder is None:
            self._encoder = self._open_encoder(width, height)
        frame = av.VideoFrame.from_ndarray(pixels, format="bgr24").reformat(width, height, "yuv420p")
        frame.pts = self.frames_encoded
        self.frames_encoded += 1
        for packet in self._encoder.encode(frame):
            self._add(_Packet(bytes(packet), bool(packet.is_keyframe), at))

    def _add(self, packet: _Packet) -> None:
        with self._lock:
            self._ring.append(packet)
            # Keep the last pre_roll_s seconds, starting at a keyframe at or before that point.
            horizon = packet.at - timedelta(seconds=self.config.pre_roll_s)
            while len(self._ring) > 1:
                keyframes = [i for i, p in enumerate(self._ring) if p.keyframe and p.at <= horizon]
                if not keyframes or keyframes[-1] == 0:
                    break
                for _ in range(keyframes[-1]):
                    self._ring.popleft()
            if self._recording is not None:
                clip_id, part, end, frames = self._recording
                part.write(packet.data)
                self._recording = (clip_id, part, end, frames + 1)
                if packet.at >= end:
                    self._finish(truncated=False)

    def _pre_roll(self) -> list[_Packet]:
        packets = list(self._ring)
        first_key = next((i for i, p in enumerate(packets) if p.keyframe), None)
        return [] if first_key is None else packets[first_key:]

    # --- finishing --------------------------------------------------------------------------------
    def _finish(self, truncated: bool) -> None:
        assert self._recording is not None
        clip_id, part, _, _ = self._recording
        self._recording = None
        part.close()
        clip = self._finish_part(clip_id, truncated)
        if clip is not None:
            self._hand_on(clip)

    def _hand_on(self, clip: Clip) -> None:
        if self.on_clip is not None:
            self.on_clip(clip)
        self.clips.append(clip)  # after it is handed on: a watcher of ``clips`` sees it in the spool

    def _finish_part(self, clip_id: str, truncated: bool) -> Clip | None:
        part = self.out_dir / f"{clip_id}{PART}"
        marker_path = self.out_dir / f"{clip_id}.json"
        meta = json.loads(marker_path.read_text())
        target = self.out_dir / f"{clip_id}.mp4"
        try:
            frames = remux_h264(part, target, meta["fps"])
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self._quarantine(clip_id, f"clip_unreadable: {str(exc)[:120]}")
            return None
        if frames == 0:
            self._quarantine(clip_id, "clip_abandoned: the agent stopped before a frame was recorded")
            return None
        meta.update(frames=frames, truncated=truncated, duration_s=round(frames / meta["fps"], 3))
        atomic_write(marker_path, json.dumps(meta).encode())
        part.unlink(missing_ok=True)
        return Clip(clip_id, target, meta)

    def _quarantine(self, clip_id: str, reason: str) -> None:
        folder = self.out_dir / "quarantine"
        folder.mkdir(exist_ok=True)
        for suffix in (PART, ".json"):
            source = self.out_dir / f"{clip_id}{suffix}"
            if source.exists():
                source.replace(folder / source.name)
        (folder / f"{clip_id}.reason").write_text(reason + "\n")
        log.warning("clip %s quarantined: %s", clip_id, reason)
        if self.on_quarantine is not None:
            self.on_quarantine(reason.split(":", 1)[0])

    def recover(self) -> list[Clip]:
        """Clips left mid-recording by a killed agent: finished from what reached the disk."""
        found = []
        for part in sorted(self.out_dir.glob(f"*{PART}")):
            clip_id = part.name[: -len(PART)]
            if not (self.out_dir / f"{clip_id}.json").exists():
                part.unlink()
                continue
            clip = self._finish_part(clip_id, truncated=True)
            if clip is not None:
                log.info("clip %s recovered after a restart: %d frames", clip_id, clip.meta["frames"])
                found.append(clip)
        return found


def spool_clip(spool: Spool, device_id: str, clip: Clip, chunk_bytes: int) -> int:
    """Put a finished clip into the spool as chunks, then drop the clip's files (the spool owns them
    now). Killed half-way, the clip is still on disk and is spooled again at the next start: the chunks
    already sent come to the station twice and are answered ``duplicate``. Returns the chunks spooled."""
    data = clip.path.read_bytes()
    meta = clip.meta
    common = {
        "device": device_id,
        "clip_id": clip.clip_id,
        "event_id": meta["event_id"],
        "started_at": datetime.fromisoformat(meta["started_at"]),
        "trigger_at": datetime.fromisoformat(meta["trigger_at"]),
        "trigger": meta["trigger"],
        "fps": float(meta["fps"]),
        "truncated": bool(meta.get("truncated", False)),
    }
    spooled = 0
    for fields, payload in split_clip(data, chunk_bytes):
        if spool.put_chunk(payload, **common, **fields) is not None:
            spooled += 1
    clip.path.unlink(missing_ok=True)
    clip.path.with_suffix(".json").unlink(missing_ok=True)
    log.info("clip %s: %d bytes in %d chunks spooled", clip.clip_id, len(data), spooled)
    return spooled


def finished_clips(folder: Path) -> list[Clip]:
    """Clips finished but not spooled (the agent stopped in between)."""
    clips = []
    for path in sorted(Path(folder).glob("*.mp4")):
        marker = path.with_suffix(".json")
        if marker.exists():
            clips.append(Clip(path.stem, path, json.loads(marker.read_text())))
    return clips


def remux_h264(raw: Path, target: Path, fps: float) -> int:
    """Put raw H.264 (Annex B) into an MP4 without re-encoding; returns the frames written."""
    tmp = target.with_name(target.name + ".tmp")
    frames = 0
    with av.open(str(raw), format="h264", options={"framerate": str(round(fps))}) as source:
        stream = source.streams.video[0]
        with av.open(str(tmp), mode="w", format="mp4") as sink:
            out = sink.add_stream_from_template(stream)
            out.time_base = Fraction(1, round(fps))  # the template's 1/1200000 makes the MP4 muxer refuse
            for packet in source.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's flush packet
                # Raw H.264 has no timestamps: the recorder paced the frames at ``fps``.
                packet.pts = packet.dts = frames
                packet.duration = 1
                packet.time_base = Fraction(1, round(fps))
                packet.stream = out
                sink.mux(packet)
                frames += 1
    if frames:
        atomic_write(target, tmp.read_bytes())
    tmp.unlink(missing_ok=True)
    return frames
