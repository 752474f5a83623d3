"""An SD card brought into the station: its pictures become frames of a camera, analysed and grouped
into events exactly as if they had arrived live, so they show on the dashboard, in the analyses and in
the Camtrap DP export with their real capture times.

Idempotent: a picture's sequence number comes from its content (the sha256 of the file on the card,
mapped to a negative number, so it never meets an agent's counter), and ``(device, seq)`` is the
station's idempotency key, so the same card imported twice is stored once. Crash-safe: the file is
written durably before its row commits, and imported rows wait in the state ``importing`` (which the
live pipeline leaves alone) until their analysis commits, one sequence per transaction; a run killed
at any point is completed by running the import again.

Old pictures raise no alerts: the import runs no alert rules unless ``--alerts`` is given, and then
without the age limit that holds back late uploads.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from datetime import UTC, timedelta, tzinfo
from pathlib import Path

import cv2
from PIL import Image, UnidentifiedImageError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from yaguar.engine.analyser import Analyser, FrameInput
from yaguar.engine.decode import DEFAULT_MAX_PIXELS, DecodeError
from yaguar.engine.detect_run import find_media, relative_name
from yaguar.engine.sdcard import FROM_FILE_TIME, Picture, capture_time, group_sequences
from yaguar.engine.stills import decode_still
from yaguar.engine.video import VideoError, VideoReader
from yaguar.storage.base import utcnow
from yaguar.storage.models import Device, Event, Media

from .clip_store import ClipSpec, frame_rows, mark_joined, store_clip_file
from .ingest.media_store import MediaStore
from .pipeline.store import EventHook, store_results

log = logging.getLogger(__name__)

TRIGGER = "sdcard"  # Media.trigger of imported frames
# ... whose capture time is the file's (no or malformed EXIF): kept on the frame for good, since the
# pipeline replaces process notes; the log says why for each picture.
TRIGGER_FILE_TIME = "sdcard_filetime"
VIDEO_SAMPLE_S = 1.0  # a video's frames analysed this often
IMPORTING = "importing"  # process_state until analysed; the live pipeline picks only "pending"


def import_seq(sha256: str) -> int:
    """The frame's seq from its content: negative (agents count up from 0), 60 bits of the hash."""
    return -(int(sha256[:15], 16) + 1)


@dataclass
class ImportResult:
    found: int = 0
    stored: int = 0
    already: int = 0  # stored by an earlier import of the same card
    file_times: int = 0  # pictures without a usable EXIF time: the file's time was used
    videos: int = 0
    analysed: int = 0
    events: int = 0


def _jpeg_bytes(picture: Picture, data: bytes) -> tuple[bytes, int, int]:
    """The bytes the station stores (PNG and HEIC become JPEG: the station's frames are JPEG) and size."""
    if not data:
        raise ValueError("the image is empty (0 bytes)")  # a camera that died mid-write
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:  # PIL's own message names a BytesIO object, not the file
        raise ValueError("not a picture: the file is damaged or of another kind") from None
    with image:
        width, height, kind = *image.size, image.format
    if kind in ("JPEG", "MPO"):  # by what the file holds, not its name (a JPEG named .png is one)
        return data, width, height
    # decoded as `yaguar detect` decodes it (turned upright as MegaDetector turns it, a GIF's first
    # frame), so the station analyses the frame that `yaguar detect` analyses
    decoded = decode_still(data, picture.path.suffix, None, DEFAULT_MAX_PIXELS)
    ok, encoded = cv2.imencode(".jpg", decoded.pixels, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise ValueError("could not convert to JPEG")
    return encoded.tobytes(), decoded.width, decoded.height


@dataclass
class CardImporter:
    sessions: sessionmaker[Session]
    media: MediaStore
    camera: str  # the device id the card's pictures belong to
    zone: tzinfo  # the camera's clock, where EXIF has no offset
    gap_s: float  # pictures further apart start a new sequence
    progress: bool = True
    result: ImportResult = field(default_factory=ImportResult)

    def store(self, folder: Path) -> list[str]:
        """Store every picture and video under ``folder`` not stored before; the one-line problems."""
        paths, videos = find_media([folder])
        pictures = [
            Picture(p, relative_name(p, [folder]), self.camera, capture_time(p, self.zone))
            for p in tqdm(paths, unit="img", desc="reading capture times", disable=not self.progress)
        ]
        self.result.found = len(pictures)
        problems: list[str] = []
        for picture in pictures:
            if picture.time.note is not None:
                self.result.file_times += 1
                log.warning("%s: capture time from the file (%s)", picture.name, picture.time.note)
        with tqdm(total=len(pictures), unit="img", desc="storing", disable=not self.progress) as bar:
            for sequence in group_sequences(pictures, self.gap_s):
                problems += self._store_sequence(sequence)
                bar.update(len(sequence))
        for video in tqdm(
            videos, unit="video", desc="sampling videos", disable=not self.progress or not videos
        ):
            problems += self._store_video(video, relative_name(video, [folder]))
        return problems

    def _store_video(self, path: Path, name: str) -> list[str]:
        """A video of the card: kept whole (the event page plays it), a frame a second analysed."""
        self.result.videos += 1
        try:
            data = path.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            with VideoReader(path, 50_000_000) as reader:
                start = reader.start_time()
        except (OSError, VideoError) as exc:
            return [f"{name}: not imported ({str(exc).splitlines()[0][:120]})"]
        if start.note is not None:
            self.result.file_times += 1
            log.warning("%s: capture time from the file (%s)", name, start.note)
        clip_id = f"sd-{sha[:32]}"
        trigger = TRIGGER if start.source != FROM_FILE_TIME else TRIGGER_FILE_TIME
        spec = ClipSpec(self.camera, clip_id, sha, clip_id, start.when, start.when, trigger)
        relative = store_clip_file(self.media, sha, data)
        try:
            rows = frame_rows(self.media, self.media.root / relative, spec, VIDEO_SAMPLE_S, IMPORTING)
        except VideoError as exc:
            return [f"{name}: not imported ({exc})"]
        for row in rows:
            row["captured_at"] = row["captured_at"].astimezone(UTC)
        self._commit([Media(**row) for row in rows])
        mark_joined(self.media.root, self.camera, clip_id, relative, len(rows))
        return []

    def _store_sequence(self, sequence: list[Picture]) -> list[str]:
        rows, problems = [], []
        burst = None
        for picture in sequence:
            try:
                data = picture.path.read_bytes()
                card_sha = hashlib.sha256(data).hexdigest()
                stored, width, height = _jpeg_bytes(picture, data)
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                problems.append(f"{picture.name}: not imported ({str(exc).splitlines()[0][:120]})")
                continue
            burst = burst or f"sd-{card_sha[:32]}"  # one burst per sequence, named by its first picture
            sha = hashlib.sha256(stored).hexdigest()
            when = picture.time.when
            offset = when.utcoffset() or timedelta(0)
            rows.append(
                Media(
                    device_id=self.camera,
                    seq=import_seq(card_sha),
                    capture_id=card_sha,
                    agent_event_id=burst,
                    burst_index=picture.frame_num,
                    burst_size=picture.seq_num_frames,
                    trigger=TRIGGER if picture.time.source != FROM_FILE_TIME else TRIGGER_FILE_TIME,
                    captured_at=when.astimezone(UTC),
                    utc_offset_min=int(offset.total_seconds() // 60),
                    sha256=sha,
                    size=len(stored),
                    width=width,
                    height=height,
                    path=self.media.write(sha, stored),  # durable before its row commits
                    process_state=IMPORTING,
                )
            )
        if rows:
            self._commit(rows)
        return problems

    def _commit(self, rows: list[Media]) -> None:
        with self.sessions.begin() as session:
            known = set(
                session.scalars(
                    select(Media.seq).where(
                        Media.device_id == self.camera, Media.seq.in_([r.seq for r in rows])
                    )
                )
            )
            fresh = [r for r in rows if r.seq not in known]
            self.result.already += len(rows) - len(fresh)
            self.result.stored += len(fresh)
            if fresh:
                self._touch_device(session, fresh)  # the camera's row first: frames refer to it
                session.flush()
                session.add_all(fresh)

    def _touch_device(self, session: Session, rows: list[Media]) -> None:
        device = session.get(Device, self.camera)
        if device is None:
            device = Device(id=self.camera, registered=False)
            session.add(device)
        first, last = min(r.captured_at for r in rows), max(r.captured_at for r in rows)
        device.first_seen = first if device.first_seen is None else min(device.first_seen, first)
        device.last_seen = last if device.last_seen is None else max(device.last_seen, last)

    def analyse(self, analyser: Analyser, media_root: Path, hooks: list[EventHook]) -> None:
        """Analyse the camera's imported frames, a sequence per transaction, in capture-time order."""
        with self.sessions() as session:
            todo = session.execute(
                select(Media.id, Media.agent_event_id, Media.path)
                .where(Media.device_id == self.camera, Media.process_state == IMPORTING)
                .order_by(Media.captured_at, Media.id)
            ).all()
        sequences: dict[str, list[tuple[int, str]]] = {}
        for media_id, burst, path in todo:
            sequences.setdefault(burst, []).append((media_id, path))
        gap = analyser.config.event_gap_s
        with tqdm(total=len(todo), unit="img", desc="analysing", disable=not self.progress) as bar:
            for burst, frames in sequences.items():
                # As in ``yaguar detect``: each sequence starts a clean motion state, so a resumed import
                # analyses a sequence exactly as an uninterrupted one would.
                analyser.motion.forget(self.camera)
                inputs = [
                    _read(analyser, FrameInput(media_id, self.camera, burst), media_root / path)
                    for media_id, path in frames
                ]
                results = [r for i in range(0, len(inputs), 8) for r in analyser.analyse(inputs[i : i + 8])]
                with self.sessions.begin() as session:
                    events = store_results(session, results, analyser.model_ident, gap, hooks).events
                self.result.analysed += len(results)
                log.debug("sequence %s: %d frames, events %s", burst, len(results), events)
                bar.update(len(frames))
        self.close_events(hooks)

    def close_events(self, hooks: list[EventHook]) -> None:
        """The card holds the camera's whole story up to the visit: its events are over."""
        with self.sessions.begin() as session:
            for event in session.scalars(
                select(Event).where(Event.device_id == self.camera, Event.closed.is_(False))
            ):
                event.closed = True
                event.updated_at = utcnow()
                for hook in hooks:
                    hook(session, event)

    def leave_for_the_station(self) -> None:
        """No models here: hand the frames to the station's own pipeline."""
        with self.sessions.begin() as session:
            session.execute(
                update(Media)
                .where(Media.device_id == self.camera, Media.process_state == IMPORTING)
                .values(process_state="pending")
            )

    def waiting(self) -> int:
        """Frames of this camera stored but not analysed yet (by this import or a killed one)."""
        with self.sessions() as session:
            return int(
                session.scalar(
                    select(func.count(Media.id)).where(
                        Media.device_id == self.camera, Media.process_state == IMPORTING
                    )
                )
                or 0
            )

    def event_count(self) -> int:
        with self.sessions() as session:
            return int(
                session.scalar(select(func.count(Event.id)).where(Event.device_id == self.camera)) or 0
            )


def _read(analyser: Analyser, frame: FrameInput, path: Path) -> FrameInput:
    try:
        frame.data = path.read_bytes()
    except OSError as exc:
        frame.error = DecodeError("unreadable", f"{path.name}: cannot read ({exc.strerror})")
        return frame
    return analyser.decode(frame)
