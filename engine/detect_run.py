"""One ``yaguar detect`` run over pictures and videos: plan, analyse unit by unit, checkpoint, write.

A unit is one sequence of pictures (a camera folder's frames close in time, ordered by capture time)
or one video. Units run in a fixed order; each starts with a clean motion state for its camera, and
checkpoints fall between units, so a resumed run writes exactly what an uninterrupted one would.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from yaguar.durable import atomic_write
from yaguar.taxonomy import common_name

from . import checkpoint as ckpt
from .analyser import Analyser, FrameInput, FrameResult
from .batch_output import BatchOutput
from .decode import DecodedImage, DecodeError
from .labelmap import shown_label
from .sdcard import Picture, capture_time, group_sequences
from .stills import JPEG_END, decode_still, kind_name, kind_suffix, still_suffixes
from .video import VideoError, VideoReader, frame_name, frame_time, is_video
from .video_summary import VideoFrameResult, summarise_video

log = logging.getLogger(__name__)

CSV_FIELDS = [
    "file",
    "category",
    "label",
    "confidence",
    "x",
    "y",
    "width",
    "height",
    "species",
    "common_name",
    "species_confidence",
    "classifier",
    "failure",
    "datetime",
    "datetime_source",
    "seq_id",
    "frame_num",
]


@dataclass
class RunSettings:
    paths: list[Path]
    output: Path
    csv_path: Path
    use_motion: bool
    batch_size: int
    decode_threads: int
    gap_s: float = 60.0
    zone: tzinfo | None = None  # where cameras that write no EXIF offset keep their clocks
    camera_zones: dict[str, tzinfo] = field(default_factory=dict)
    video_every_s: float = 1.0
    clips_dir: Path | None = None
    checkpoint_every: int = 1000
    resume: bool = False
    progress: bool = True


@dataclass
class Unit:
    key: str
    camera: str
    pictures: list[Picture] | None = None
    video: Path | None = None


@dataclass
class RunTotals:
    files: int = 0
    failures: int = 0
    frames: int = 0  # entries written (pictures and sampled video frames)
    videos: list[dict[str, Any]] = field(default_factory=list)


def find_media(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(pictures, videos) under the given files and folders, each sorted; hidden names passed over."""
    suffixes = still_suffixes()
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not hidden(p, path)))
        else:
            found.append(path)
    pictures = [p for p in found if p.suffix.lower() in suffixes]
    return pictures, [p for p in found if is_video(p)]


def hidden(path: Path, folder: Path) -> bool:
    """A name starting with a dot below the folder given: macOS's ``._IMG_0001.JPG`` (resource forks
    copied onto a card, not pictures), ``.thumbnails`` and ``.Trashes``. MegaDetector's file search
    (``glob("**/*.*")``) passes them over too, so both list the same pictures."""
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def relative_name(path: Path, roots: list[Path]) -> str:
    for root in roots:
        if root.is_dir():
            try:
                return path.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                continue
    return path.as_posix()


def naming_roots(paths: list[Path]) -> list[Path]:
    """The folders that names are relative to: the folder given, or, with several, their common parent,
    so two cameras' ``IMG_0001.JPG`` stay two names in two camera folders (MegaDetector names files
    relative to the one folder it is given)."""
    folders = [p.resolve() for p in paths if p.is_dir()]
    if len(folders) > 1:
        return [Path(os.path.commonpath(folders))]
    return paths


def camera_of(name: str) -> str:
    """The camera folder of a file's relative name (``.`` for files at the card's top)."""
    parent = Path(name).parent.as_posix()
    return parent or "."


def plan(settings: RunSettings) -> list[Unit]:
    pictures, videos = find_media(settings.paths)
    roots = naming_roots(settings.paths)

    def picture(path: Path) -> Picture:
        name = relative_name(path, roots)
        camera = camera_of(name)
        zone = settings.camera_zones.get(camera, settings.zone or UTC)
        return Picture(path, name, camera, capture_time(path, zone))

    # One thread: headers only (about a millisecond a file), and EXIF warnings are caught process-wide.
    found = list(
        tqdm(
            map(picture, pictures),
            total=len(pictures),
            unit="img",
            desc="reading capture times",
            disable=not settings.progress or not pictures,
        )
    )
    units = [
        Unit(seq[0].seq_id, seq[0].camera, pictures=seq) for seq in group_sequences(found, settings.gap_s)
    ]
    for path in videos:
        name = relative_name(path, roots)
        units.append(Unit(name, name, video=path))
    return units


def _read_picture(picture: Picture, analyser: Analyser) -> FrameInput:
    suffix = picture.path.suffix
    frame = FrameInput(
        picture.name,
        camera=picture.camera,
        burst_id=picture.seq_id,
        decoder=lambda data, min_side, max_pixels: decode_still(data, suffix, min_side, max_pixels),
    )
    try:
        data = picture.path.read_bytes()
        named, holds = kind_suffix(b"", suffix), kind_suffix(data, suffix)
        if named != holds:  # read as what it holds, as MegaDetector reads it
            log.warning("%s: named %s but holds a %s; read as one", picture.name, suffix, kind_name(holds))
        try:
            frame.decoded = frame.decoder(data, analyser.min_side, analyser.config.max_pixels)
        except DecodeError as exc:
            if exc.reason != "truncated_jpeg":
                raise
            # A card pulled while the camera wrote: MegaDetector (Pillow with LOAD_TRUNCATED_IMAGES)
            # analyses what the file holds, so do the same. The end marker put back lets libjpeg decode
            # the rows that are there (the rest is grey); a file cut before its image data still fails.
            data += JPEG_END
            frame.decoded = frame.decoder(data, analyser.min_side, analyser.config.max_pixels)
            log.warning("%s: %s; analysed as far as it goes", picture.name, exc)
        frame.motion = analyser.motion.prepare(frame.decoded.pixels)
        if frame.decoded.scale > 1:
            frame.data = data  # a closer look may decode it finer (engine/look.py), PNG and HEIC too
    except OSError as exc:
        frame.error = DecodeError("unreadable", f"cannot read ({exc.strerror})")
    except DecodeError as exc:
        frame.error = exc
    return frame


class Runner:
    def __init__(self, analyser: Analyser, settings: RunSettings) -> None:
        self.analyser = analyser
        self.settings = settings
        self.output = BatchOutput(
            analyser.detector.ident, [c.ident for c in analyser.classifiers], analyser.detector.threshold
        )
        self.rows: list[dict[str, Any]] = []
        self.totals = RunTotals()
        self.state = ckpt.Checkpoint(fingerprint=self.fingerprint())

    def fingerprint(self) -> dict[str, Any]:
        a, s = self.analyser, self.settings
        return {
            "detector": a.detector.ident,
            "classifiers": [c.ident for c in a.classifiers],
            "threshold": a.detector.threshold,
            "look": a.config.look.model_dump(mode="json"),  # the closer look's passes change the boxes
            "region": [a.config.region, *a.config.extra_species],  # and the species named
            "motion": s.use_motion,
            "gap_s": s.gap_s,
            "video_every_s": s.video_every_s,
            "paths": [str(p.resolve()) for p in s.paths],
        }

    def run(self) -> RunTotals:
        s = self.settings
        path = ckpt.checkpoint_path(s.output)
        if s.resume:
            self.state = ckpt.load(path, self.fingerprint())
            # The entries and species ids found before the interruption, in their original order.
            self.output.images = self.state.images
            self.output.species_ids = self.state.species_ids
            self.rows = self.state.csv_rows
            self.totals.videos = self.state.videos
        done = set(self.state.done)
        with ThreadPoolExecutor(s.decode_threads, thread_name_prefix="yaguar-decode") as pool:
            units = plan(s)
            self.totals.files = sum(len(u.pictures or []) or 1 for u in units)
            todo = [u for u in units if u.key not in done]
            since = 0
            with tqdm(
                total=self.totals.files,
                initial=self.totals.files - sum(len(u.pictures or []) or 1 for u in todo),
                unit="file",
                desc="detecting",
                disable=not s.progress,
            ) as bar:
                for unit in todo:
                    since += self._run_unit(unit, pool)
                    bar.update(len(unit.pictures or []) or 1)
                    self.state.done.append(unit.key)
                    if since >= s.checkpoint_every and unit is not todo[-1]:
                        self._save_checkpoint(path)
                        since = 0
        self.totals.frames = len(self.output.images)
        self.totals.failures = sum(1 for image in self.output.images if image.get("failure"))
        self._write_outputs()
        path.unlink(missing_ok=True)
        return self.totals

    def _save_checkpoint(self, path: Path) -> None:
        self.state.images = self.output.images
        self.state.species_ids = self.output.species_ids
        self.state.csv_rows = self.rows
        self.state.videos = self.totals.videos
        ckpt.save(path, self.state)

    def _write_outputs(self) -> None:
        s = self.settings
        self.output.write(s.output)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, CSV_FIELDS)
        writer.writeheader()
        writer.writerows(self.rows)
        # A name that is not UTF-8 on disk (Latin-1 from an old card) is written as the JSON writes it
        atomic_write(s.csv_path, buffer.getvalue().encode("utf-8", errors="backslashreplace"))
        if self.totals.videos:
            atomic_write(videos_path(s.output), json.dumps({"videos": self.totals.videos}, indent=1).encode())

    def _run_unit(self, unit: Unit, pool: ThreadPoolExecutor) -> int:
        # A sequence (or video) far from the last one in time has other light: start its motion afresh.
        self.analyser.motion.forget(unit.camera)
        if unit.pictures is not None:
            extras = {
                p.name: {
                    "datetime": p.time.when.isoformat(),
                    "datetime_source": p.time.source,
                    "seq_id": p.seq_id,
                    "seq_num_frames": p.seq_num_frames,
                    "frame_num": p.frame_num,
                }
                for p in unit.pictures
            }
            for p in unit.pictures:
                if p.time.note:
                    log.info("%s: capture time from the file (%s)", p.name, p.time.note)
            frames = _lookahead(pool, lambda p: _read_picture(p, self.analyser), unit.pictures)
            for batch in _batches(frames, self.settings.batch_size):
                self._emit(self.analyser.analyse(batch, use_motion=self.settings.use_motion), extras)
            return len(unit.pictures)
        assert unit.video is not None
        return self._run_video(unit)

    def _run_video(self, unit: Unit) -> int:
        assert unit.video is not None
        try:
            reader = VideoReader(unit.video, self.analyser.config.max_pixels)
        except (VideoError, OSError) as exc:
            self._fail(unit.key, exc)
            return 1
        seen: list[VideoFrameResult] = []
        extras: dict[str, dict[str, Any]] = {}
        with reader:
            start = reader.start_time()
            try:
                frames = (
                    self._video_frame(unit, reader, sampled, start, extras)
                    for sampled in reader.frames(self.settings.video_every_s, self.analyser.min_side)
                )
                for batch in _batches(frames, self.settings.batch_size):
                    results = self.analyser.analyse(batch, use_motion=self.settings.use_motion)
                    self._emit(results, extras)
                    for result in results:
                        seen.append(VideoFrameResult(str(result.key), extras[str(result.key)], result))
            except VideoError as exc:
                self._fail(unit.key, exc)
                return 1
            summary = summarise_video(unit.key, reader, start, seen)
        if self.settings.clips_dir is not None and summary["species"]:
            from .video_clips import export_clips

            summary["clips"] = export_clips(
                unit.video, unit.key, seen, self.settings.clips_dir, reader.orientation
            )
        self.totals.videos.append(summary)
        return len(seen)

    def _video_frame(
        self, unit: Unit, reader: VideoReader, sampled: Any, start: Any, extras: dict[str, dict[str, Any]]
    ) -> FrameInput:
        name = frame_name(unit.key, sampled.index)
        extras[name] = {
            "datetime": frame_time(start, sampled.time_s).isoformat(),
            "datetime_source": start.source,
            "seq_id": unit.key,
            "frame_num": sampled.index,
            "frame_time_s": sampled.time_s,
        }
        frame = FrameInput(name, camera=unit.camera, burst_id=unit.key)
        frame.decoded = _decoded(sampled.pixels, reader.width, reader.height)
        frame.motion = self.analyser.motion.prepare(sampled.pixels)
        return frame

    def _fail(self, name: str, exc: Exception) -> None:
        note = str(exc)
        log.warning("%s: %s", name, note)
        self.output.add(name, None, failure=note)
        self.rows.append({"file": name, "failure": note})

    def _emit(self, results: list[FrameResult], extras: dict[str, dict[str, Any]]) -> None:
        for result in results:
            name = str(result.key)
            extra = extras.get(name, {})
            row_extra: dict[str, Any] = {
                k: extra[k] for k in ("datetime", "datetime_source", "seq_id", "frame_num") if k in extra
            }
            if result.state == "failed":
                log.warning("%s: %s", name, result.note)
                self.output.add(name, None, failure=result.note or "failed")
                self.output.images[-1].update(extra)
                self.rows.append({"file": name, "failure": result.note, **row_extra})
                continue
            self.output.add(name, result.detections)
            self.output.images[-1].update(extra)
            if not result.detections:
                category = "blank" if result.state == "done" else "skipped"
                self.rows.append({"file": name, "category": category, **row_extra})
            for det in result.detections:
                x, y, w, h = det.bbox
                self.rows.append(
                    {
                        "file": name,
                        "category": det.category,
                        "label": shown_label(det.category, det.species),
                        "confidence": det.confidence,
                        "x": x,
                        "y": y,
                        "width": w,
                        "height": h,
                        "species": det.species or "",
                        "common_name": common_name(det.species, "en") if det.species else "",
                        "species_confidence": ""
                        if det.species_confidence is None
                        else det.species_confidence,
                        "classifier": det.classifier or "",
                        **row_extra,
                    }
                )


def videos_path(output: Path) -> Path:
    """The per-video summaries, beside the MegaDetector file (whose top-level keys are fixed)."""
    return output.with_name(output.stem + ".videos.json")


def _decoded(pixels: np.ndarray, width: int, height: int) -> DecodedImage:
    return DecodedImage(pixels=pixels, width=width, height=height, scale=max(1, width // pixels.shape[1]))


def _lookahead(
    pool: ThreadPoolExecutor, read: Callable[[Picture], FrameInput], items: list[Picture], depth: int = 16
) -> Iterator[FrameInput]:
    """Read items in the pool, at most ``depth`` ahead, yielding in order (memory stays bounded)."""
    pending: deque[Future[FrameInput]] = deque()
    for item in items:
        pending.append(pool.submit(read, item))
        if len(pending) >= depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _batches(frames: Iterator[FrameInput], size: int) -> Iterator[list[FrameInput]]:
    batch: list[FrameInput] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
