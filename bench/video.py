"""Benchmark of video on this machine: how much analysis adds to decoding, and what clip recording costs
the field agent.

Prints, each with its reference from the same run:
- offline video (``yaguar detect`` on an MP4/H.264 made from real frames): sampled frames per second
  decoded alone (the reference: PyAV, sampling, the shrink) and analysed (decode + motion + detection
  + classification: the real ``Runner``), and the ratio;
- the agent recording clips (a pre-roll ring of H.264 packets fed by the replay camera) against the
  agent's burst capture at the same frame rate: CPU seconds per wall second and peak memory growth.

Usage: .venv/bin/python bench/video.py [--quick] [--seconds N]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import psutil

from yaguar.engine.config import PipelineConfig
from yaguar.paths import shared_data_dir


def make_video(images: Path, out: Path, seconds: int, fps: int = 10) -> Path:
    """An MP4/H.264 at 1280x864 from the jaguar frames: each frame shown for a second."""
    from tests.support.videos import write_video

    sources = sorted((images / "jaguar").glob("*.jpg"))
    frames = [cv2.resize(cv2.imread(str(sources[i % len(sources)])), (1280, 864)) for i in range(seconds)]
    return write_video(out, frames, fps=fps, repeat=fps)


def decode_only(video: Path, every_s: float, min_side: int) -> tuple[int, float]:
    from yaguar.engine.video import VideoReader

    start = time.perf_counter()
    with VideoReader(video, 50_000_000) as reader:
        count = sum(1 for _ in reader.frames(every_s, min_side))
    return count, time.perf_counter() - start


def analysed(video: Path, every_s: float, workdir: Path, classify: bool) -> tuple[int, float]:
    from yaguar.engine.analyser import Analyser
    from yaguar.engine.detect_run import Runner, RunSettings

    config = PipelineConfig(enabled=True, classifiers=PipelineConfig().classifiers if classify else [])
    analyser = Analyser(config)
    settings = RunSettings(
        paths=[video.parent],
        output=workdir / "out.json",
        csv_path=workdir / "out.csv",
        use_motion=False,  # every sampled frame analysed: the cost of analysis, not of the gate
        batch_size=config.batch_size,
        decode_threads=1,
        video_every_s=every_s,
        progress=False,
    )
    start = time.perf_counter()
    totals = Runner(analyser, settings).run()
    return totals.frames, time.perf_counter() - start


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def agent_costs(images: Path, workdir: Path, seconds: float, fps: float) -> None:
    """CPU and memory of the agent's clip recorder (pre-roll ring) against its pre-trigger burst ring."""
    from yaguar.agent.cameras.replay import ReplayCamera
    from yaguar.agent.capture import BurstWorker, CameraRunner, PretriggerBuffer, Trigger
    from yaguar.agent.clips import ClipRecorder, RecorderConfig
    from yaguar.agent.config import CaptureConfig
    from yaguar.agent.metrics import AgentMetrics
    from yaguar.agent.spool import Spool

    frames = workdir / "camera"
    frames.mkdir()
    for path in sorted((images / "jaguar").glob("*.jpg"))[:6]:
        small = cv2.resize(cv2.imread(str(path)), (1280, 864))
        cv2.imwrite(str(frames / path.name), small, [cv2.IMWRITE_JPEG_QUALITY, 85])

    def measure(name: str, run: Callable[[], None]) -> tuple[float, float]:
        """CPU seconds per wall second, and the most the resident memory grew (sampled every 20 ms)."""
        process = psutil.Process()
        rss0 = process.memory_info().rss
        peak = [rss0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                peak[0] = max(peak[0], process.memory_info().rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        run()
        cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
        done.set()
        sampler.join()
        grown = (peak[0] - rss0) / 2**20
        print(f"  {name:34} CPU {cpu / wall:5.2f} s/s over {wall:4.1f} s, RSS grew {grown:6.1f} MB")
        return cpu / wall, grown

    def bursts() -> None:
        # The agent's burst path as it runs: a pre-trigger ring at the same rate, one PIR burst of a
        # second at 10 fps into the real (fsynced) spool.
        runner = CameraRunner(ReplayCamera(frames), AgentMetrics())
        ring = PretriggerBuffer(runner, frames=int(fps * 3), fps=fps)
        settings = CaptureConfig(
            burst_size=int(fps), burst_interval_s=1 / fps, pretrigger_frames=int(fps * 3)
        )
        spool = Spool(workdir / "spool")
        worker = BurstWorker("bench-cam", runner, spool, settings=lambda: settings, metrics=AgentMetrics())
        worker.pretrigger = ring
        ring.start()
        worker.start()
        time.sleep(seconds / 2)
        worker.submit(Trigger("pir"))
        time.sleep(seconds / 2)
        worker.stop()
        ring.stop()

    def clips() -> None:
        recorder = ClipRecorder(
            ReplayCamera(frames), workdir / "clips", RecorderConfig(fps=fps, pre_roll_s=3, post_roll_s=2)
        )
        recorder.start()
        time.sleep(seconds / 2)
        recorder.trigger("bench")
        time.sleep(seconds / 2)
        recorder.stop()

    print(f"agent at {fps:.0f} fps, 1280x864 replay frames, {seconds:.0f} s each:")
    burst_cpu, _ = measure("JPEG pre-trigger ring + burst", bursts)
    clip_cpu, _ = measure("H.264 pre-roll ring + clip (clips)", clips)
    print(f"  clips cost {clip_cpu / max(burst_cpu, 1e-9):.1f}x the CPU of bursts with a pre-trigger ring")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short video and short agent runs")
    parser.add_argument("--seconds", type=int, default=None, help="length of the test video")
    parser.add_argument("--video-fps", type=float, default=2.0, help="frames analysed per video second")
    parser.add_argument("--classify", action="store_true", help="also run the station's classifiers")
    args = parser.parse_args()
    data = shared_data_dir()
    if data is None:
        print("bench/video.py: the shared data folder (../shared/data) is needed")
        return 2
    seconds = args.seconds or (10 if args.quick else 30)
    with tempfile.TemporaryDirectory(prefix="yaguar-bench-video-") as tmp:
        workdir = Path(tmp)
        (workdir / "videos").mkdir()
        video = make_video(data / "images", workdir / "videos" / "jaguar.mp4", seconds)
        every = 1.0 / args.video_fps
        decode_only(video, every, 416)  # warm the page cache and the codec
        count, decode_s = decode_only(video, every, 416)
        frames, analyse_s = analysed(video, every, workdir, args.classify)
        decode_fps, analyse_fps = count / decode_s, frames / analyse_s
        print(
            f"offline video: {seconds} s of 1280x864 H.264 at 10 fps, {args.video_fps:g} frames sampled a second"
        )
        print(f"  decode alone: {decode_fps:.1f} sampled frames/s ({count} frames in {decode_s:.2f} s)")
        label = "detect + classify" if args.classify else "detect"
        print(f"  decode + {label}: {analyse_fps:.1f} frames/s ({frames} frames in {analyse_s:.2f} s)")
        print(f"  analysis runs at {analyse_fps / decode_fps:.3f}x the decode rate")
        agent_costs(data / "images", workdir, 4.0 if args.quick else 10.0, fps=10.0)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support for the video maker
    sys.exit(main())
