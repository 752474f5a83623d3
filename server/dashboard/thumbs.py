"""Frame files and their thumbnails: paths checked against the media root, thumbnails made once with
OpenCV and kept on disk (written atomically, so two requests racing for one never see half a file)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
from prometheus_client import Counter

from yaguar.durable import atomic_write
from yaguar.engine.decode import MIRRORED, exif_orientation

log = logging.getLogger(__name__)

HEADER_BYTES = 256 * 1024  # a JPEG's EXIF (at most 64 KB) and frame header are near its start


@dataclass(frozen=True)
class Shown:
    """How the event page shows a frame so that its boxes fall where the detections are."""

    width: int  # the size the browser shows it at (its aspect ratio)
    height: int
    as_stored: bool  # CSS image-orientation: none


def shown(path: Path | None, width: int, height: int) -> Shown:
    """Browsers turn a picture by all eight EXIF orientations; the boxes are in MegaDetector's frame
    (engine/decode.py), which turns 3, 6 and 8 only, so a mirrored frame is shown as stored, and a
    frame turned a quarter (6, 8) is shown with its stored width and height swapped."""
    orientation = 1
    if path is not None:
        try:
            with path.open("rb") as file:
                orientation = exif_orientation(file.read(HEADER_BYTES))
        except OSError:
            pass  # the page shows the frame's box; the image itself answers 404
    if orientation in MIRRORED:
        return Shown(width, height, True)
    return Shown(height, width, False) if orientation in (6, 8) else Shown(width, height, False)


class ThumbnailCache:
    def __init__(self, media_root: Path, thumb_dir: Path, max_px: int, made: Counter) -> None:
        self.media_root = Path(media_root).resolve()
        self.thumb_dir = Path(thumb_dir)
        self.max_px = max_px
        self._made = made

    def frame_path(self, relative: str) -> Path | None:
        """The frame's file, or None when the stored path leaves the media root or the file is gone."""
        candidate = (self.media_root / relative).resolve()
        if not candidate.is_relative_to(self.media_root) or candidate == self.media_root:
            log.warning("media path %r leaves the media root: refused", relative)
            return None
        return candidate if candidate.is_file() else None

    def thumb_path(self, media_id: int) -> Path:
        return self.thumb_dir / str(media_id // 1000) / f"{media_id}-{self.max_px}.jpg"

    def get(self, media_id: int, relative: str) -> Path | None:
        """The cached thumbnail, made now if it is missing; None when the frame cannot be read."""
        target = self.thumb_path(media_id)
        if target.is_file():
            self._made.labels("cached").inc()
            return target
        source = self.frame_path(relative)
        if source is None:
            return None
        image = _read_reduced(source, self.max_px)
        if image is None:
            self._made.labels("unreadable").inc()
            log.warning("frame %s (media %d) cannot be decoded: no thumbnail", source, media_id)
            return None
        height, width = image.shape[:2]
        scale = self.max_px / max(height, width)
        if scale < 1:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            self._made.labels("unreadable").inc()
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, encoded.tobytes(), fsync=False)  # a cache: made again if lost
        self._made.labels("made").inc()
        return target


def _read_reduced(path: Path, max_px: int) -> cv2.typing.MatLike | None:
    """Decode at 1/2, 1/4 or 1/8 scale when the JPEG is big enough: a 12 MP frame decodes ~8x faster."""
    flags = cv2.IMREAD_COLOR
    try:
        header = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_8)
    except cv2.error:
        return None
    if header is None:
        return None
    full_side = max(header.shape[:2]) * 8
    for factor, flag in (
        (8, cv2.IMREAD_REDUCED_COLOR_8),
        (4, cv2.IMREAD_REDUCED_COLOR_4),
        (2, cv2.IMREAD_REDUCED_COLOR_2),
    ):
        if full_side / factor >= max_px:
            flags = flag
            break
    try:
        return cv2.imread(str(path), flags)
    except cv2.error:
        return None
