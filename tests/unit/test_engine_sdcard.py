"""SD cards: capture times from real EXIF written into copies of shared images, sequences, PNG and HEIC."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.support.exif import copy_with_exif, with_broken_exif
from yaguar.engine.decode import DecodeError, decode_jpeg
from yaguar.engine.detect_run import RunSettings, plan
from yaguar.engine.sdcard import (
    FROM_CAMERA_TIMEZONE,
    FROM_EXIF_OFFSET,
    FROM_FILE_TIME,
    HEIF_AVAILABLE,
    CaptureTime,
    Picture,
    capture_time,
    group_sequences,
    parse_zone,
)
from yaguar.engine.stills import decode_still, still_suffixes

BOGOTA = parse_zone("America/Bogota")


@pytest.fixture
def jaguar(images: Path) -> Path:
    return images / "jaguar" / "AABP_13_20051007_1205.jpg"


def test_exif_offset_wins_over_the_camera_zone(tmp_path: Path, jaguar: Path) -> None:
    picture = copy_with_exif(jaguar, tmp_path / "a.jpg", "2005:10:07 12:05:30", "-05:00", reduce=4)
    found = capture_time(picture, parse_zone("Europe/Madrid"))
    assert found.source == FROM_EXIF_OFFSET and found.note is None
    assert found.when.astimezone(UTC) == datetime(2005, 10, 7, 17, 5, 30, tzinfo=UTC)


def test_no_offset_uses_the_camera_time_zone(tmp_path: Path, images: Path) -> None:
    # The real Reconyx heron frames carry DateTimeOriginal without an offset.
    heron = next(iter(sorted((images.parent / "camtrap-dp-1.0.2" / "example" / "media").glob("*.JPG"))))
    found = capture_time(heron, BOGOTA)
    assert found.source == FROM_CAMERA_TIMEZONE
    assert found.when.astimezone(UTC) == datetime(2021, 4, 12, 1, 43, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("case", "note"),
    [
        ("none", "no EXIF capture time"),
        ("zeros", "malformed EXIF time '0000:00:00 00:00:00'"),
        ("broken", "malformed EXIF (Corrupt EXIF data"),
        ("empty", "unreadable EXIF"),
    ],
)
def test_bad_or_missing_exif_falls_back_to_the_file_time(
    tmp_path: Path, jaguar: Path, case: str, note: str
) -> None:
    target = tmp_path / "x.jpg"
    if case == "zeros":
        copy_with_exif(jaguar, target, "0000:00:00 00:00:00", reduce=4)
    else:
        copy_with_exif(jaguar, target, None, reduce=4)
    if case == "broken":
        target.write_bytes(with_broken_exif(target.read_bytes()))
    if case == "empty":
        target.write_bytes(b"")
    stamp = datetime(2024, 3, 1, 6, 30, tzinfo=UTC).timestamp()
    os.utime(target, (stamp, stamp))
    found = capture_time(target, BOGOTA)
    assert found.source == FROM_FILE_TIME
    assert found.note is not None and found.note.startswith(note)
    assert found.when == datetime(2024, 3, 1, 6, 30, tzinfo=UTC)


def test_zones_and_their_errors() -> None:
    assert parse_zone("-05:00").utcoffset(None) == timedelta(hours=-5)
    assert parse_zone("UTC").utcoffset(None) == timedelta(0)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        parse_zone("Mars/Olympus")


def _picture(camera: str, name: str, minute: float) -> Picture:
    when = datetime(2025, 1, 1, 6, 0, tzinfo=UTC) + timedelta(minutes=minute)
    return Picture(Path(name), f"{camera}/{name}", camera, CaptureTime(when, FROM_CAMERA_TIMEZONE))


def test_sequences_split_by_camera_and_time_gap() -> None:
    pictures = [
        _picture("cam-b", "b1.jpg", 0),
        _picture("cam-a", "a3.jpg", 10),  # file order is not time order
        _picture("cam-a", "a1.jpg", 0),
        _picture("cam-a", "a2.jpg", 0.5),
        _picture("cam-a", "a4.jpg", 10.9),
    ]
    sequences = group_sequences(pictures, gap_s=60)
    assert [[p.name for p in s] for s in sequences] == [
        ["cam-a/a1.jpg", "cam-a/a2.jpg"],
        ["cam-a/a3.jpg", "cam-a/a4.jpg"],
        ["cam-b/b1.jpg"],
    ]
    a4 = sequences[1][1]
    assert (a4.seq_id, a4.frame_num, a4.seq_num_frames) == ("cam-a#0002", 1, 2)


def test_png_and_heic_decode_with_their_exif(tmp_path: Path, jaguar: Path) -> None:
    suffixes = [".png", ".heic"] if HEIF_AVAILABLE else [".png"]
    assert set(suffixes) <= still_suffixes()
    for suffix in suffixes:
        target = copy_with_exif(jaguar, tmp_path / f"x{suffix}", "2005:10:07 12:05:00", reduce=4)
        decoded = decode_still(target.read_bytes(), suffix, 416, 50_000_000)
        assert (decoded.width, decoded.height) == (455, 307) and decoded.pixels.shape[:2] == (307, 455)
        assert capture_time(target, BOGOTA).source == FROM_CAMERA_TIMEZONE


def test_a_jpeg_named_png_is_read_as_the_jpeg_it_is(tmp_path: Path, jaguar: Path) -> None:
    """As MegaDetector (Pillow) reads it; a .png that holds no picture kind known here is refused."""
    data = jaguar.read_bytes()
    assert np.array_equal(decode_still(data, ".png", 416, 50_000_000).pixels, decode_jpeg(data, 416).pixels)
    with pytest.raises(DecodeError, match=r"named \.png but is not a PNG"):
        decode_still(b"\x00 not a picture" * 40, ".png", 416, 50_000_000)


def test_two_camera_folders_keep_two_names_for_one_file_name(tmp_path: Path, jaguar: Path) -> None:
    """``yaguar detect card/100RECNX card/101RECNX``: both cameras write IMG_0001.JPG."""
    folders = [tmp_path / "card" / "100RECNX", tmp_path / "card" / "101RECNX"]
    for folder in folders:
        folder.mkdir(parents=True)
        copy_with_exif(jaguar, folder / "IMG_0001.JPG", "2005:10:07 12:05:30", reduce=8)
    settings = RunSettings(folders, tmp_path / "o.json", tmp_path / "o.csv", False, 1, 1, progress=False)
    units = plan(settings)
    assert sorted((u.camera, [p.name for p in u.pictures or []]) for u in units) == [
        ("100RECNX", ["100RECNX/IMG_0001.JPG"]),
        ("101RECNX", ["101RECNX/IMG_0001.JPG"]),
    ]
