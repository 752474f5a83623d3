"""What the SD-card import says about a file it cannot take (the ranger reads it in the log)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from yaguar.engine.sdcard import FROM_FILE_TIME, CaptureTime, Picture
from yaguar.server.sdcard_import import _jpeg_bytes


def _picture(path: Path) -> Picture:
    return Picture(
        path, path.name, "100RECNX", CaptureTime(datetime(2021, 4, 12, tzinfo=UTC), FROM_FILE_TIME)
    )


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("IMG_0000.JPG", b"", "the image is empty (0 bytes)"),
        ("IMG_0001.JPG", b"\x00camera died" * 50, "not a picture: the file is damaged or of another kind"),
        ("IMG_0002.png", b"PNG? no", "not a picture: the file is damaged or of another kind"),
    ],
)
def test_a_file_that_is_no_picture_gets_a_plain_reason(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ValueError) as caught:
        _jpeg_bytes(_picture(path), data)
    assert str(caught.value) == reason
