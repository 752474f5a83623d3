"""Phone videos stored sideways with a display rotation are read upright, as MegaDetector reads them.

MegaDetector reads video with OpenCV's VideoCapture, which applies the display matrix by default, so
its boxes are in the upright frame. Each clip here is real H.264 made from real jaguar frames: the
"phone" clip stores the frames turned the other way and says, in its display matrix, how to turn them
back, so read upright it must match the plain clip: the same size, the same pixels, the same boxes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.support.engine import read_bgr
from tests.support.videos import write_video
from yaguar.engine.analyser import FrameResult
from yaguar.engine.detector import Detection, Detector
from yaguar.engine.manifest import find_manifest
from yaguar.engine.postprocess import iou_xywh
from yaguar.engine.video import VideoReader
from yaguar.engine.video_clips import export_clips
from yaguar.engine.video_summary import VideoFrameResult

JAGUARS = ("AABP_13_20051007_1205.jpg", "AABP_9_20051024_0559.jpg")


@pytest.fixture(scope="module")
def jaguar_frames(images: Path) -> list[np.ndarray]:
    return [cv2.resize(read_bgr(images / "jaguar" / name), (480, 320)) for name in JAGUARS]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory, jaguar_frames: list[np.ndarray]) -> Path:
    return write_video(tmp_path_factory.mktemp("plain") / "plain.mp4", jaguar_frames, fps=1)


def _phone_clip(folder: Path, frames: list[np.ndarray], degrees: int) -> Path:
    """Frames stored turned clockwise by ``degrees``, with a display matrix turning them back."""
    stored = [np.ascontiguousarray(np.rot90(f, -round(degrees / 90))) for f in frames]
    return write_video(folder / f"phone{degrees}.mp4", stored, fps=1, rotation=degrees)


def _read(path: Path, min_side: int | None = None) -> tuple[tuple[int, int], list[np.ndarray]]:
    with VideoReader(path, 50_000_000) as reader:
        return (reader.width, reader.height), [f.pixels for f in reader.frames(1.0, min_side)]


def _opencv_frames(path: Path) -> list[np.ndarray]:
    """What MegaDetector's video reader (cv2.VideoCapture, default properties) gets."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            return frames
        frames.append(image)


def _mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_a_rotated_clip_is_read_upright_like_opencv(
    tmp_path: Path, jaguar_frames: list[np.ndarray], plain: Path, degrees: int
) -> None:
    phone = _phone_clip(tmp_path, jaguar_frames, degrees)
    plain_size, plain_frames = _read(plain)
    phone_size, phone_frames = _read(phone)
    assert plain_size == phone_size == (480, 320)
    assert [f.shape for f in phone_frames] == [(320, 480, 3)] * 2
    # The same picture, up to what H.264 loses encoding it turned (a sideways frame differs by ~60).
    assert max(_mean_diff(a, b) for a, b in zip(plain_frames, phone_frames, strict=True)) < 4
    # MegaDetector's reader turns it the same way.
    opencv = _opencv_frames(phone)
    assert len(opencv) == 2
    assert max(_mean_diff(a, b) for a, b in zip(opencv, phone_frames, strict=True)) < 2
    # Shrunk for the detector, it is still upright.
    assert [f.shape for f in _read(phone, min_side=240)[1]] == [(160, 240, 3)] * 2


def test_boxes_on_a_rotated_clip_match_the_plain_clip(
    tmp_path: Path, jaguar_frames: list[np.ndarray], plain: Path, models_dir: Path
) -> None:
    detector = Detector(find_manifest("yolox_nano"), models_dir)
    plain_boxes = detector.detect(_read(plain, 416)[1])
    phone_boxes = detector.detect(_read(_phone_clip(tmp_path, jaguar_frames, 90), 416)[1])
    assert all(plain_boxes), "the jaguars are found in the plain clip"
    for ours, theirs in zip(plain_boxes, phone_boxes, strict=True):
        best = max(ours, key=lambda d: d.confidence)
        assert max(iou_xywh(best.bbox, d.bbox) for d in theirs) > 0.9


def test_an_odd_rotation_is_logged_once_and_read_as_stored(
    tmp_path: Path, jaguar_frames: list[np.ndarray], plain: Path, caplog: pytest.LogCaptureFixture
) -> None:
    odd = write_video(tmp_path / "odd.mp4", jaguar_frames, fps=1, rotation=45)
    with caplog.at_level(logging.WARNING, logger="yaguar.engine.video"):
        size, frames = _read(odd)
    assert [r.getMessage() for r in caplog.records] == [
        "odd.mp4: display rotation of 45 degrees ignored, frames read as stored"
    ]
    assert size == (480, 320)
    assert max(_mean_diff(a, b) for a, b in zip(_read(plain)[1], frames, strict=True)) < 1
    assert _opencv_frames(odd)[0].shape == (320, 480, 3)  # OpenCV reads it as stored too


def test_clips_of_a_rotated_video_are_upright_with_the_boxes_in_place(
    tmp_path: Path, jaguar_frames: list[np.ndarray]
) -> None:
    """The green box of an upright (portrait) frame is drawn where the box is in the portrait frame."""
    portrait = [np.ascontiguousarray(np.rot90(f)) for f in jaguar_frames]  # 320 wide, 480 tall upright
    phone = _phone_clip(tmp_path, portrait, 90)
    box = Detection("animal", "animal", 0.9, [0.1, 0.6, 0.3, 0.2])  # low in the portrait frame
    with VideoReader(phone, 50_000_000) as reader:
        found = [
            VideoFrameResult(
                f"phone90.mp4/frame{s.index:06d}.jpg",
                {"frame_time_s": s.time_s},
                FrameResult(s.index, "done", detections=[box]),
            )
            for s in reader.frames(1.0)
        ]
    names = export_clips(phone, "phone90.mp4", found, tmp_path / "clips", reader.orientation)
    with av.open(str(tmp_path / "clips" / names[0])) as clip:
        image = next(iter(clip.decode(video=0))).to_ndarray(format="bgr24")
    assert image.shape == (480, 320, 3)
    green = np.all(np.abs(image.astype(int) - np.array([60, 200, 60])) < 40, axis=2)
    rows, cols = np.nonzero(green)
    # The box's bottom and left edges (its label is written above it, in the same colour).
    assert abs(rows.max() - 0.8 * 480) <= 3 and abs(cols.min() - 0.1 * 320) <= 3
