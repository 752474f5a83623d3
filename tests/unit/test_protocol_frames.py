"""The frame validator on real images and on broken and hostile ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.support import jpegs as bad
from yaguar.protocol import (
    FrameLimits,
    ProtocolError,
    build_meta,
    inspect_jpeg,
    to_properties,
    validate_frame,
)
from yaguar.protocol.frame import from_properties

BOGOTA = timezone(timedelta(hours=-5))


def frame_props(payload: bytes, device: str = "cam-1", **overrides):
    fields = {
        "device": device,
        "seq": 7,
        "capture_id": "c1",
        "event_id": "e1",
        "burst_index": 0,
        "burst_size": 3,
        "captured_at": datetime(2026, 11, 26, 2, 14, 7, tzinfo=BOGOTA),
        "trigger": "pir",
    }
    fields.update(overrides)
    return to_properties(build_meta(payload, **fields))


@pytest.fixture(scope="module")
def dog(images: Path) -> bytes:
    return (images / "classic" / "dog.jpg").read_bytes()


def test_every_real_image_passes_and_reports_its_size(images: Path) -> None:
    checked = 0
    for path in sorted(images.rglob("*")):
        if path.suffix.lower() not in (".jpg", ".jpeg") or path.stat().st_size == 0:
            continue
        info = inspect_jpeg(path.read_bytes(), max_pixels=50_000_000)
        assert info.width > 100 and info.height > 100, path
        checked += 1
    assert checked >= 25


def test_round_trip_keeps_the_utc_offset(dog: bytes) -> None:
    valid = validate_frame(
        "yaguar/v1/cam-1/frame", dog, frame_props(dog), now=datetime(2026, 11, 26, tzinfo=UTC)
    )
    assert valid.meta.captured_at.utcoffset() == timedelta(hours=-5)
    assert valid.meta.seq == 7
    assert (valid.jpeg.width, valid.jpeg.height) == (768, 576)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda dog: b"", "empty_payload"),
        (lambda dog: bad.png_bytes(), "not_jpeg"),
        (lambda dog: bad.tiff_bytes(), "not_jpeg"),
        (bad.truncated, "truncated_jpeg"),
        (lambda dog: dog[:300], "truncated_jpeg"),
        (lambda dog: bad.with_dimensions(dog, 65535, 65535), "image_too_large"),
        (lambda dog: bad.with_dimensions(dog, 0, 100), "corrupt_jpeg"),
    ],
)
def test_bad_images_are_refused_with_their_reason(dog: bytes, make, reason: str) -> None:
    payload = make(dog)
    props = frame_props(payload if payload else b"x")  # a 0-byte frame cannot carry a valid size
    with pytest.raises(ProtocolError) as info:
        validate_frame("yaguar/v1/cam-1/frame", payload, props)
    assert info.value.reason == reason
    assert "\n" not in str(info.value)


def test_png_disguised_as_jpeg_says_what_it_is() -> None:
    with pytest.raises(ProtocolError, match="looks like PNG"):
        inspect_jpeg(bad.png_bytes())


def test_property_problems(dog: bytes) -> None:
    cases = {
        "device_mismatch": ("yaguar/v1/cam-2/frame", dog, frame_props(dog)),
        "size_mismatch": ("yaguar/v1/cam-1/frame", dog + b"x", frame_props(dog)),
        "oversize_payload": ("yaguar/v1/cam-1/frame", dog * 60, frame_props(dog)),
        "bad_device_id": ("yaguar/v1/../frame", dog, frame_props(dog)),
        "bad_properties": ("yaguar/v1/cam-1/frame", dog, None),
        "clock_in_future": (
            "yaguar/v1/cam-1/frame",
            dog,
            frame_props(dog, captured_at=datetime.now(UTC) + timedelta(days=30)),
        ),
    }
    for reason, (topic, payload, props) in cases.items():
        with pytest.raises(ProtocolError) as info:
            validate_frame(topic, payload, props, FrameLimits(max_payload_bytes=8 * 1024 * 1024))
        assert info.value.reason == reason, reason


def test_checksum_mismatch(dog: bytes) -> None:
    props = frame_props(dog)
    flipped = bytearray(dog)
    flipped[1000] ^= 0xFF
    with pytest.raises(ProtocolError) as info:
        validate_frame("yaguar/v1/cam-1/frame", bytes(flipped), props)
    assert info.value.reason == "checksum_mismatch"


def edited(props, change):
    """New properties with the user properties changed (paho appends on assignment, so copy)."""
    fresh = Properties(PacketTypes.PUBLISH)
    fresh.ContentType = props.ContentType
    fresh.UserProperty = change(list(props.UserProperty))
    return fresh


def test_malformed_properties(dog: bytes) -> None:
    props = frame_props(dog)
    cases = [
        (lambda up: [(k, "abc" if k == "seq" else v) for k, v in up], "seq must be an integer"),
        (lambda up: [*up, ("seq", "8")], "repeated"),
        (lambda up: [(k, "2026-11-26T02:00:00" if k == "captured_at" else v) for k, v in up], "timezone"),
        (lambda up: [*up, ("colour", "red")], "colour"),
        (lambda up: [(k, v) for k, v in up if k != "sha256"], "sha256"),
    ]
    for change, message in cases:
        with pytest.raises(ProtocolError, match=message) as info:
            from_properties(edited(props, change))
        assert info.value.reason == "bad_properties"
