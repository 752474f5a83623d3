"""Pictures written turned, with an EXIF orientation tag: decoded in MegaDetector's frame of reference,
at the station (``decode_jpeg``, and a card's import) and in ``yaguar detect`` (``decode_still``) alike."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from yaguar.engine.decode import decode_jpeg
from yaguar.engine.sdcard import FROM_FILE_TIME, CaptureTime, Picture
from yaguar.engine.stills import decode_still
from yaguar.server.sdcard_import import _jpeg_bytes

T = Image.Transpose
# How a camera stores the picture it means to be shown upright under each tag (each undone by the tag)
STORED = {
    1: None,
    2: T.FLIP_LEFT_RIGHT,
    3: T.ROTATE_180,
    4: T.FLIP_TOP_BOTTOM,
    5: T.TRANSPOSE,
    6: T.ROTATE_90,
    7: T.TRANSVERSE,
    8: T.ROTATE_270,
}
# MegaDetector's loader (visualization_utils.open_image): PIL's rotate by these degrees for 3, 6 and 8;
# the mirrored tags fail its assert, which it catches, and the picture stays as stored.
MEGADETECTOR_ROTATION = {3: 180, 6: 270, 8: 90}


def _tagged(shown: Image.Image, orientation: int, fmt: str) -> bytes:
    turn = STORED[orientation]
    stored = shown if turn is None else shown.transpose(turn)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, fmt, exif=exif.tobytes(), **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _as_megadetector_loads(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        orientation = image.getexif().get(0x0112, 1)
        picture = image.convert("RGB")
    if orientation in MEGADETECTOR_ROTATION:
        picture = picture.rotate(MEGADETECTOR_ROTATION[orientation], expand=True)
    return np.asarray(picture)[:, :, ::-1]  # BGR, as OpenCV decodes


@pytest.fixture(scope="module")
def shown(images: Path) -> Image.Image:
    with Image.open(images / "jaguar" / "AABP_13_20051007_1205.jpg") as source:
        return source.convert("RGB").reduce(4)  # not square, so a wrong quarter turn shows in the shape


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_decodes_as_megadetector_turns_it(shown: Image.Image, orientation: int) -> None:
    jpeg = _tagged(shown, orientation, "JPEG")
    expected = _as_megadetector_loads(jpeg)
    for decoded in (decode_jpeg(jpeg), decode_still(jpeg, ".JPG", None, 50_000_000)):
        assert decoded.pixels.shape == expected.shape
        assert (decoded.width, decoded.height) == (expected.shape[1], expected.shape[0])
        # OpenCV's libjpeg and Pillow's round a few pixels apart; a wrong turn or flip differs by tens
        assert np.abs(decoded.pixels.astype(int) - expected).mean() < 2, orientation
    reduced = decode_jpeg(jpeg, min_side=200)
    assert reduced.scale > 1 and reduced.pixels.shape[:2] == tuple(
        -(-n // reduced.scale) for n in expected.shape[:2]
    )
    png = _tagged(shown, orientation, "PNG")
    assert np.array_equal(decode_still(png, ".png", None, 50_000_000).pixels, _as_megadetector_loads(png))


@pytest.mark.parametrize(
    ("orientation", "fmt", "suffix"),
    [
        (2, "PNG", ".png"),
        (6, "PNG", ".png"),
        (8, "WEBP", ".webp"),
        (1, "GIF", ".gif"),
        (1, "TIFF", ".tif"),
        (6, "PNG", ".jpg"),  # named as another kind than it holds: read as what it holds
    ],
)
def test_the_station_import_stores_the_frame_that_yaguar_detect_analyses(
    shown: Image.Image, orientation: int, fmt: str, suffix: str, tmp_path: Path
) -> None:
    """A card's PNG, WebP, GIF or TIFF becomes a JPEG at the station: the same frame, turned alike."""
    data = _tagged(shown, orientation, fmt)
    path = tmp_path / f"IMG_0001{suffix}"
    path.write_bytes(data)
    when = CaptureTime(datetime(2021, 4, 12, tzinfo=UTC), FROM_FILE_TIME)
    stored, width, height = _jpeg_bytes(Picture(path, path.name, "100RECNX", when), data)
    at_station = decode_jpeg(stored)
    offline = decode_still(data, suffix, None, 50_000_000)
    assert at_station.pixels.shape == offline.pixels.shape
    assert (width, height) == (offline.width, offline.height) == (at_station.width, at_station.height)
    # the JPEG's loss alone (a dithered GIF loses most); a turn or a flip differs by tens
    assert np.abs(at_station.pixels.astype(int) - offline.pixels).mean() < 6
