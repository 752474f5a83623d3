"""The agent's clip recorder: an H.264 ring with pre-roll fed by the replay camera of real frames."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.integration.agent_support import agent_config
from yaguar.agent.cameras.base import CapturedImage
from yaguar.agent.cameras.picamera_clips import PicameraClipRecorder
from yaguar.agent.cameras.replay import ReplayCamera
from yaguar.agent.clips import PART, ClipRecorder, RecorderConfig
from yaguar.agent.config import Picamera2Config
from yaguar.agent.service import Agent


class LoggingCamera(ReplayCamera):
    """The replay camera, remembering which file each capture returned and when."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.log: list[tuple[datetime, int]] = []

    def capture(self) -> CapturedImage:
        index = self._next % len(self._files)
        image = super().capture()
        self.log.append((image.captured_at, index))
        return image


@pytest.fixture
def camera_folder(tmp_path: Path, images: Path) -> Path:
    folder = tmp_path / "camera"
    folder.mkdir()
    for i, path in enumerate(sorted((images / "jaguar").glob("*.jpg"))):  # 11 different scenes
        cv2.imwrite(str(folder / f"{i:02d}.jpg"), cv2.resize(cv2.imread(str(path)), (480, 320)))
    return folder


def test_a_clip_starts_with_frames_from_before_the_trigger(tmp_path: Path, camera_folder: Path) -> None:
    camera = LoggingCamera(camera_folder)
    config = RecorderConfig(fps=10, pre_roll_s=1.0, post_roll_s=1.0, keyframe_s=0.5)
    recorder = ClipRecorder(camera, tmp_path / "clips", config).start()
    time.sleep(2.0)
    recorder.trigger("pir", event_id="evt-1")
    deadline = time.monotonic() + 20
    while not recorder.clips and time.monotonic() < deadline:
        time.sleep(0.05)
    recorder.stop()
    assert recorder.clips, "no clip was finished"
    clip = recorder.clips[0]
    meta = json.loads((tmp_path / "clips" / f"{clip.clip_id}.json").read_text())
    assert meta == clip.meta and meta["event_id"] == "evt-1" and meta["truncated"] is False
    trigger_at = datetime.fromisoformat(meta["trigger_at"])
    assert meta["pre_roll_s"] >= 1.0

    with av.open(str(clip.path)) as video:
        frames = [f.to_ndarray(format="bgr24") for f in video.decode(video=0)]
    assert len(frames) == meta["frames"]
    # The encoder emits one packet per capture, at once: the clip is captures c0 .. c_last, where c_last
    # is the first capture at or after the end of the post-roll.
    end = trigger_at + timedelta(seconds=config.post_roll_s)
    c_last = next(i for i, (at, _) in enumerate(camera.log) if at >= end)
    c0 = c_last - len(frames) + 1
    assert camera.log[c0][0] < trigger_at - timedelta(seconds=0.9)  # a second of pre-roll, at least
    sources = [cv2.imread(str(p)) for p in sorted(camera_folder.glob("*.jpg"))]
    for frame, (_, index) in ((frames[0], camera.log[c0]), (frames[-1], camera.log[c_last])):
        errors = [float(np.mean((frame.astype(np.float32) - s.astype(np.float32)) ** 2)) for s in sources]
        assert int(np.argmin(errors)) == index


RECORD_AND_WAIT = """
import sys, time
from pathlib import Path
from yaguar.agent.cameras.replay import ReplayCamera
from yaguar.agent.clips import ClipRecorder, RecorderConfig
recorder = ClipRecorder(ReplayCamera(Path(sys.argv[1])), Path(sys.argv[2]), RecorderConfig(fps=10, post_roll_s=60))
recorder.start()
time.sleep(1.0)
print(recorder.trigger("pir"), flush=True)
time.sleep(120)
"""


def test_a_clip_cut_by_kill_9_is_recovered_at_the_next_start(tmp_path: Path, camera_folder: Path) -> None:
    clips = tmp_path / "clips"
    child = subprocess.Popen(
        [sys.executable, "-c", RECORD_AND_WAIT, str(camera_folder), str(clips)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    clip_id = child.stdout.readline().strip()
    time.sleep(1.5)  # a second and a half of the minute of post-roll
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert (clips / f"{clip_id}{PART}").exists()

    # Beside it, a clip whose agent died before a single frame reached the disk.
    (clips / f"clip-empty{PART}").write_bytes(b"")
    (clips / "clip-empty.json").write_text(json.dumps({"clip_id": "clip-empty", "fps": 10}))

    counted: list[str] = []
    recovered = ClipRecorder(ReplayCamera(camera_folder), clips, on_quarantine=counted.append).recover()
    assert [c.clip_id for c in recovered] == [clip_id]
    assert recovered[0].meta["truncated"] is True and recovered[0].meta["frames"] >= 15
    with av.open(str(recovered[0].path)) as video:
        assert sum(1 for _ in video.decode(video=0)) == recovered[0].meta["frames"]
    reason = (clips / "quarantine" / "clip-empty.reason").read_text()
    assert reason.startswith("clip_abandoned: the agent stopped before a frame was recorded")
    assert counted == ["clip_abandoned"]  # the agent's metric yaguar_agent_clips_quarantined
    assert not list(clips.glob(f"*{PART}"))


def test_a_pi_without_picamera2_says_so_and_the_agent_runs_on(tmp_path: Path, camera_folder: Path) -> None:
    config = agent_config(
        tmp_path / "agent", None, camera_folder, clips={"enabled": True, "dir": str(tmp_path / "clips")}
    ).model_copy(update={"camera": Picamera2Config()})
    agent = Agent(config)
    assert isinstance(agent.clips, PicameraClipRecorder)
    agent.start()
    try:
        assert agent.runner.error is not None and "apt install python3-picamera2" in agent.runner.error
    finally:
        agent.stop()
