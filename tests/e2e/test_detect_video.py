"""``yaguar detect`` over real encoded video: MP4/H.264 and MJPEG AVI made from the shared frames."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.support.detect import detect_command
from tests.support.engine import read_bgr
from tests.support.videos import heron_frames, write_video
from yaguar.engine.batch_output import validate_batch_output
from yaguar.engine.postprocess import iou_xywh


def _jaguar_video(path: Path, images: Path, rotation: int | None = None) -> Path:
    """8 s at 10 fps: 3 s of an empty scene, 3 s of jaguars (a new view each second), 2 s empty again.
    With ``rotation`` (90): stored sideways, as a phone does, with a display matrix that turns it back."""

    def frame(name: str) -> np.ndarray:
        return cv2.resize(read_bgr(images / "jaguar" / name), (640, 432))

    empty = frame("AABP_17_20051024_0559.jpg")
    jaguars = [
        frame(n)
        for n in ("AABP_13_20051007_1205.jpg", "AABP_9_20051024_0559.jpg", "AABP_7_20050913_1220.jpg")
    ]
    if rotation:
        empty, jaguars = np.rot90(empty, -1).copy(), [np.rot90(j, -1).copy() for j in jaguars]
    frames = [empty] * 30 + [j for j in jaguars for _ in range(10)] + [empty] * 20
    return write_video(path, frames, fps=10, creation_time="2005-10-07T17:05:00.000000Z", rotation=rotation)


def _bad_videos(card: Path) -> None:
    good = card / "truncated.mp4"
    write_video(good, [np.full((240, 320, 3), 90, np.uint8)] * 20, fps=10)
    good.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (card / "notes.mp4").write_text("a ranger's notes, saved with the wrong name\n" * 20)
    with av.open(str(card / "zero.mp4"), mode="w") as container:  # a header, no frames: 0 seconds
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()


def test_video_frames_are_found_at_the_right_times(
    tmp_path: Path, shared_data: Path, images: Path, models_dir: Path
) -> None:
    card = tmp_path / "card"
    card.mkdir()
    _jaguar_video(card / "jaguar.mp4", images)
    _jaguar_video(card / "phone.mp4", images, rotation=90)
    write_video(card / "heron.avi", heron_frames(shared_data), fps=1, codec="mjpeg")
    _bad_videos(card)
    out, clips = tmp_path / "out.json", tmp_path / "clips"
    run = subprocess.run(
        detect_command(
            card, out, models_dir, "--no-classify", "--motion", "--video-fps", "1", "--clips", str(clips)
        ),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 images, 6 videos, 3 could not be read" in run.stdout
    data = json.loads(out.read_text())
    assert validate_batch_output(data) == []
    by_file = {e["file"]: e for e in data["images"]}

    # MegaDetector's video convention: one entry per sampled frame, named by its frame number.
    jaguar = {f: e for f, e in by_file.items() if f.startswith("jaguar.mp4/")}
    assert sorted(jaguar) == [f"jaguar.mp4/frame{i:06d}.jpg" for i in range(0, 80, 10)]
    seen = sorted(e["frame_time_s"] for e in jaguar.values() if e["detections"])
    assert seen == [3.0, 4.0, 5.0]
    assert jaguar["jaguar.mp4/frame000030.jpg"]["datetime"] == "2005-10-07T17:05:03+00:00"
    assert jaguar["jaguar.mp4/frame000030.jpg"]["datetime_source"] == "video_metadata"
    # The phone's sideways copy is read upright, as MegaDetector's OpenCV reader does: the same boxes.
    for name, entry in jaguar.items():
        phone = by_file[name.replace("jaguar.mp4", "phone.mp4")]
        assert len(phone["detections"]) == len(entry["detections"])
        for ours, theirs in zip(entry["detections"], phone["detections"], strict=True):
            assert iou_xywh(ours["bbox"], theirs["bbox"]) > 0.8
    heron = [e for f, e in by_file.items() if f.startswith("heron.avi/")]
    assert len(heron) == 10 and any(e["detections"] for e in heron)

    assert by_file["truncated.mp4"]["failure"] == "the video is truncated or damaged (cannot read its index)"
    assert by_file["notes.mp4"]["failure"] == "the file is named .mp4 but is not a video"
    assert by_file["zero.mp4"]["failure"] == "the video has no frames (0 seconds long, or sound only)"

    summaries = {v["file"]: v for v in json.loads(out.with_name("out.videos.json").read_text())["videos"]}
    summary = summaries["jaguar.mp4"]
    animal = next(s for s in summary["species"] if s["name"] == "animal")
    assert (animal["first_s"], animal["last_s"], animal["frames"]) == (3.0, 5.0, 3)
    assert animal["first_time"] == "2005-10-07T17:05:03+00:00"
    assert animal["last_time"] == "2005-10-07T17:05:05+00:00"
    # The motion gate: the still empty scene (1 s, 2 s, 7 s) is not analysed.
    assert summary["frames_without_motion"] == 3 and summary["frames_analysed"] == 5
    assert summary["best_frame"] in {f"jaguar.mp4/frame{i:06d}.jpg" for i in (30, 40, 50)}
    assert (summaries["phone.mp4"]["width"], summaries["phone.mp4"]["height"]) == (640, 432)

    # One clip around the jaguar, from a second before to a second after, with the boxes drawn.
    assert summary["clips"] == ["jaguar_clip01_00002.0s.mp4"]
    with av.open(str(clips / summary["clips"][0])) as clip:
        frames = [f.to_ndarray(format="bgr24") for f in clip.decode(video=0)]
    assert 40 <= len(frames) <= 42  # 2.0 s .. 6.0 s at 10 fps
    green = np.array([60, 200, 60])
    boxed = [bool(np.any(np.all(np.abs(f.astype(int) - green) < 40, axis=2))) for f in frames]
    assert not boxed[0] and boxed[len(frames) // 2]


# The probe's own peak is VmHWM: ru_maxrss also counts the parent's resident memory that the child held
# between fork and exec (Linux keeps it across exec), so under an xdist worker that had grown to 2 GB
# running other tests it read 2339 MB for a probe whose own peak was about 220 MB.
MEMORY_PROBE = """
import sys
from pathlib import Path
from yaguar.engine.video import VideoReader
with VideoReader(Path(sys.argv[1]), 50_000_000) as reader:
    sampled = sum(1 for _ in reader.frames(1.0, 416))
    print(reader.width, reader.height, round(reader.fps), sampled)
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) // 1024)
"""


@pytest.mark.slow
def test_4k_60fps_video_is_read_in_bounded_memory(tmp_path: Path, images: Path) -> None:
    frame = cv2.resize(read_bgr(images / "jaguar" / "AABP_13_20051007_1205.jpg"), (3840, 2160))
    video = write_video(tmp_path / "4k.mp4", [frame], fps=60, repeat=240)  # 4 s of H.264
    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(video)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    size, peak_mb = probe.stdout.split("\n")[:2]
    assert size == "3840 2160 60 4"
    # The 240 decoded 4K frames held at once would be 3 GB (YUV) or 6 GB (BGR). One at a time, the
    # process stays near what its imports cost plus FFmpeg's decoding threads: 170-270 MB measured here.
    assert int(peak_mb) < 1500, f"peak memory {peak_mb} MB"
