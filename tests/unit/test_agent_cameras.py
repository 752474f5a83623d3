"""Cameras: the replay camera over real images, failures that are logged, counted and retried, the
burst's pacing, the size fitting for sending, and the pre-trigger buffer."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from yaguar.agent.cameras import CameraError, ReplayCamera
from yaguar.agent.cameras.encode import fit_for_sending
from yaguar.agent.cameras.opencv import OpenCvCamera
from yaguar.agent.capture import BurstWorker, CameraRunner, PretriggerBuffer, Trigger, burst
from yaguar.agent.config import CaptureConfig
from yaguar.agent.metrics import AgentMetrics
from yaguar.agent.spool import Spool
from yaguar.engine.decode import decode_jpeg
from yaguar.protocol.jpeg import inspect_jpeg


def test_replay_camera_plays_real_jpegs_in_order_and_loops(images: Path) -> None:
    camera = ReplayCamera(images / "classic")
    camera.open()
    shots = [camera.capture() for _ in range(8)]
    names = sorted(p.name for p in (images / "classic").glob("*.jpg"))
    assert len(names) == 6
    assert shots[0].jpeg == (images / "classic" / names[0]).read_bytes()
    assert shots[6].jpeg == shots[0].jpeg  # looped
    for shot in shots:
        info = inspect_jpeg(shot.jpeg)
        assert (info.width, info.height) == (shot.width, shot.height)
        assert shot.captured_at.utcoffset() is not None


def test_a_camera_that_does_not_open_says_why(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="does not exist"):
        ReplayCamera(tmp_path / "nowhere").open()
    with pytest.raises(CameraError, match="no JPEG files"):
        ReplayCamera(tmp_path).open()
    with pytest.raises(CameraError, match="did not open"):
        OpenCvCamera("/dev/video-yaguar-missing").open()


def test_a_camera_that_returns_nothing(tmp_path: Path, images: Path) -> None:
    shutil.copy(images / "camera-trap" / "error_img.JPG", tmp_path / "a.jpg")  # the real 0-byte frame
    camera = ReplayCamera(tmp_path, skip_invalid=False)
    camera.open()
    with pytest.raises(CameraError, match="returned nothing"):
        camera.capture()


def test_runner_logs_counts_and_retries_a_failing_camera(
    tmp_path: Path, images: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = AgentMetrics()
    folder = tmp_path / "cam"
    folder.mkdir()
    runner = CameraRunner(ReplayCamera(folder), metrics, retry_s=0.2)
    assert runner.grab() is None
    assert not runner.ok and "no JPEG files" in (runner.error or "")
    assert "camera: open failed" in caplog.text
    assert runner.grab() is None  # inside the retry delay: not even tried
    assert metrics.total("yaguar_agent_camera_errors") == 1
    shutil.copy(images / "classic" / "dog.jpg", folder / "dog.jpg")
    time.sleep(0.25)
    image = runner.grab()
    assert image is not None and runner.ok and runner.error is None


def test_burst_is_paced_on_its_interval(images: Path) -> None:
    runner = CameraRunner(ReplayCamera(images / "classic"), AgentMetrics())
    started = time.monotonic()
    shots = list(burst(runner, 4, 0.1))
    assert [i for i, _ in shots] == [0, 1, 2, 3]
    assert 0.28 <= time.monotonic() - started < 1.0


def test_fit_for_sending_scales_and_reencodes_only_when_needed(images: Path) -> None:
    camera = ReplayCamera(images / "jaguar")
    camera.open()
    shot = camera.capture()
    assert fit_for_sending(shot, None, 85, 64 * 1024 * 1024) is shot
    small = fit_for_sending(shot, 640, 80, 200_000)
    assert max(small.width, small.height) == 640
    assert len(small.jpeg) <= 200_000
    pixels = cv2.imdecode(np.frombuffer(small.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert pixels.shape[:2] == (small.height, small.width)
    assert small.captured_at == shot.captured_at


@pytest.mark.parametrize("orientation", [2, 6])
def test_a_frame_scaled_for_sending_keeps_the_orientation_the_camera_wrote(
    images: Path, tmp_path: Path, orientation: int
) -> None:
    """The copy sent is scaled as stored, with the camera's EXIF: the station turns it (or, mirrored,
    leaves it) as `yaguar detect` does the camera's own file, unsquashed."""
    with Image.open(images / "jaguar" / "AABP_13_20051007_1205.jpg") as source:
        shown = source.convert("RGB")
    turn = Image.Transpose.ROTATE_90 if orientation == 6 else Image.Transpose.FLIP_LEFT_RIGHT
    tag = Image.Exif()
    tag[0x0112] = orientation
    shown.transpose(turn).save(tmp_path / "IMG_0001.JPG", quality=90, exif=tag.tobytes())
    camera = ReplayCamera(tmp_path)
    camera.open()
    shot = camera.capture()
    sent = fit_for_sending(shot, 640, 80, 4 * 1024 * 1024)
    assert max(sent.width, sent.height) == 640 and sent.width / sent.height == pytest.approx(
        shot.width / shot.height, abs=0.01
    )
    at_station, original = decode_jpeg(sent.jpeg), decode_jpeg(shot.jpeg).pixels
    height, width = at_station.pixels.shape[:2]
    assert width / height == pytest.approx(original.shape[1] / original.shape[0], abs=0.01)
    expected = cv2.resize(original, (width, height), interpolation=cv2.INTER_AREA)
    # a quality-80 copy differs by about 5 on average; flipped, it would differ by about 45
    assert np.abs(at_station.pixels.astype(int) - expected).mean() < 12


def test_burst_worker_spools_a_burst_with_pretrigger_frames(tmp_path: Path, images: Path) -> None:
    metrics = AgentMetrics()
    spool = Spool(tmp_path / "spool", fsync=False, metrics=metrics)
    runner = CameraRunner(ReplayCamera(images / "classic"), metrics)
    pre = PretriggerBuffer(runner, frames=2, fps=20)
    pre.start()
    time.sleep(0.3)
    cfg = CaptureConfig(burst_size=3, burst_interval_s=0.01)
    worker = BurstWorker("cam-01", runner, spool, settings=lambda: cfg, metrics=metrics, pretrigger=pre)
    try:
        assert worker.run_burst(Trigger("pir")) == 5
    finally:
        pre.stop()
    frames = spool.send_order()
    assert sorted(f.meta.burst_index for f in frames) == [-2, -1, 0, 1, 2]
    assert {f.meta.event_id for f in frames} == {frames[0].meta.event_id}
    assert frames[0].meta.burst_index == 0  # the first real frame leads
    assert all(f.meta.trigger == "pir" and f.meta.burst_size == 3 for f in frames)
    assert len({f.meta.capture_id for f in frames}) == 5
