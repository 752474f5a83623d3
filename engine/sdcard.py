"""SD cards: when each picture was taken, and which pictures belong to one sequence.

Trail cameras write the capture time into EXIF ``DateTimeOriginal``; newer ones add
``OffsetTimeOriginal`` (EXIF 2.31). Most write no offset, so a per-camera time-zone setting says
where the camera's clock was. A picture with malformed EXIF or no capture time falls back to the
file's modification time, and the output says so (``datetime_source``), because a file time copied
off a card is often the copy time, not the capture time.

Pictures are grouped into sequences per camera folder, in capture-time order, the way the station
groups bursts into events: a gap longer than ``gap_s`` starts a new sequence.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from PIL import ExifTags, Image

from .decode import PILLOW_ERRORS

log = logging.getLogger(__name__)

_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
_DATETIME = 0x0132  # IFD0 "DateTime": last change; some cameras write only this one
EXIF_FORMAT = "%Y:%m:%d %H:%M:%S"

# Where a capture time came from (the ``datetime_source`` field of the output).
FROM_EXIF_OFFSET = "exif_offset"  # DateTimeOriginal with the camera's own OffsetTimeOriginal
FROM_CAMERA_TIMEZONE = "camera_timezone"  # DateTimeOriginal, read in the camera's configured zone
FROM_FILE_TIME = "file_time"  # no usable EXIF time: the file's modification time


def _register_heif() -> bool:
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


HEIF_AVAILABLE = _register_heif()


@dataclass(frozen=True)
class CaptureTime:
    when: datetime  # timezone-aware
    source: str  # FROM_EXIF_OFFSET, FROM_CAMERA_TIMEZONE or FROM_FILE_TIME
    note: str | None = None  # why the file time was used


def parse_zone(name: str) -> tzinfo:
    """An IANA zone (``America/Bogota``), ``UTC``, or a fixed offset (``-05:00``); ValueError otherwise."""
    text = name.strip()
    if text[:1] in "+-" and len(text) == 6 and text[3] == ":":
        try:
            hours, minutes = int(text[1:3]), int(text[4:6])
        except ValueError:
            raise ValueError(f"{name!r} is not a UTC offset like -05:00") from None
        sign = -1 if text[0] == "-" else 1
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use e.g. America/Bogota or -05:00)") from None


def _exif_text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    value = value.strip("\x00 ")
    return value or None


def read_exif_time(source: bytes | Path) -> tuple[datetime, str | None] | None:
    """(naive capture time, offset text or None) from the image's EXIF, None when it has none.

    Only the header is read (Pillow opens lazily). Raises ValueError with a one-line reason when the
    file or its EXIF cannot be read."""
    # Pillow reads a cut EXIF block as far as it can and warns; the warning is the only sign of it.
    # (warnings state is process-wide: capture times are read in one thread, see detect_run.plan)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
                exif = image.getexif()
                sub = exif.get_ifd(ExifTags.IFD.Exif)
        except PILLOW_ERRORS as exc:
            raise ValueError(f"unreadable EXIF ({type(exc).__name__})") from None
    broken = next((str(w.message) for w in caught if "EXIF" in str(w.message)), None)
    text = _exif_text(sub.get(_DATETIME_ORIGINAL)) or _exif_text(exif.get(_DATETIME))
    if text is None:
        if broken:
            raise ValueError(f"malformed EXIF ({broken.strip()[:80]})")
        return None
    try:
        naive = datetime.strptime(text[:19], EXIF_FORMAT)
    except ValueError:
        raise ValueError(f"malformed EXIF time {text[:30]!r}") from None
    return naive, _exif_text(sub.get(_OFFSET_TIME_ORIGINAL))


def capture_time(path: Path, camera_zone: tzinfo) -> CaptureTime:
    """When the picture was taken; see the module docstring for the order of the sources."""
    try:
        found = read_exif_time(path)
        note = None if found else "no EXIF capture time"
    except ValueError as exc:
        found, note = None, str(exc)
    if found is not None:
        naive, offset = found
        if offset:
            try:
                return CaptureTime(_with_offset(naive, offset), FROM_EXIF_OFFSET)
            except ValueError:
                log.info("%s: EXIF offset %r unreadable, using the camera's time zone", path.name, offset)
        return CaptureTime(naive.replace(tzinfo=camera_zone), FROM_CAMERA_TIMEZONE)
    return file_time(path, note or "no EXIF capture time")


def file_time(path: Path, note: str) -> CaptureTime:
    try:
        stamp = path.stat().st_mtime
    except OSError:
        stamp = 0.0
    return CaptureTime(datetime.fromtimestamp(stamp, UTC), FROM_FILE_TIME, note)


def _with_offset(naive: datetime, offset: str) -> datetime:
    return datetime.fromisoformat(naive.isoformat() + offset.strip())


@dataclass
class Picture:
    """One file of the card, with where it sits in time."""

    path: Path
    name: str  # relative to the card root, as written in the output
    camera: str  # the camera folder
    time: CaptureTime
    seq_id: str = ""
    frame_num: int = 0
    seq_num_frames: int = 0


def group_sequences(pictures: list[Picture], gap_s: float) -> list[list[Picture]]:
    """Sequences per camera folder in time order: a gap longer than ``gap_s`` starts a new one.

    The order is deterministic (camera, time, name), so an interrupted run and its resume agree."""
    ordered = sorted(pictures, key=lambda p: (p.camera, p.time.when, p.name))
    sequences: list[list[Picture]] = []
    gap = timedelta(seconds=gap_s)
    for picture in ordered:
        current = sequences[-1] if sequences else None
        if (
            current is None
            or current[-1].camera != picture.camera
            or picture.time.when - current[-1].time.when > gap
        ):
            sequences.append([picture])
        else:
            current.append(picture)
    counters: dict[str, int] = {}
    for sequence in sequences:
        camera = sequence[0].camera
        counters[camera] = counters.get(camera, 0) + 1
        seq_id = f"{camera}#{counters[camera]:04d}"
        for number, picture in enumerate(sequence):
            picture.seq_id, picture.frame_num, picture.seq_num_frames = seq_id, number, len(sequence)
    return sequences
