"""Issue 6's end-to-end promise: the station and ``yaguar detect`` with ``backend = "opencl"`` (PoCL here)
give the same events and detections as with onnxruntime on the shared images."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from tests.integration.opencl_helpers import require_opencl
from tests.support.station import running_station
from yaguar.server.simulator import SimAgent
from yaguar.storage.models import Detection, Event, Media

BURSTS = [
    ("classic", ["dog.jpg", "eagle.jpg", "scream.jpg"]),
    ("jaguar", ["AABP_7_20050913_1220.jpg", "RL_10_20051003_1721.jpg", "AREAS_28_20051017_1554.jpg"]),
]


def run_station(
    broker, workdir: Path, images: Path, models_dir: Path, backend: str, **overrides: object
) -> tuple[list, list]:
    pipeline = {
        "enabled": True,
        "backend": backend,
        "model_dir": str(models_dir),
        "skip_without_motion": False,
        "batch_wait_ms": 5,
        "event_gap_s": 1,
        **overrides,
    }
    # each run its own shared group: a stopped worker's persistent session keeps its share of a group
    with running_station(
        broker,
        workdir,
        http=False,
        pipeline=pipeline,
        mqtt={"client_id": f"st-{workdir.name}", "shared_group": workdir.name},
    ) as station:
        component = next(c for c in station.components if c.name == "pipeline")
        assert component.unavailable is None, component.unavailable
        for index, (folder, names) in enumerate(BURSTS):
            frames = [(images / folder / name).read_bytes() for name in names]
            agent = SimAgent(
                f"cam-{backend[:3]}-{index}", broker.host, broker.port, frames, burst_size=3
            ).connect()
            agent.publish_burst()
            assert agent.wait_acked(30)
            agent.close()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with station.session_factory() as session:
                states = session.scalars(select(Media.process_state)).all()
            if len(states) == 6 and "pending" not in states:
                break
            time.sleep(0.2)
        with station.session_factory() as session:
            assert all(m.process_state == "done" for m in session.scalars(select(Media)).all())
            detections = sorted(
                (
                    m.sha256,
                    d.label,
                    d.category,
                    round(d.confidence, 2),
                    *(round(v, 2) for v in (d.x, d.y, d.w, d.h)),
                )
                for d, m in session.execute(select(Detection, Media).join(Media)).all()
            )
            events = sorted(
                (e.frame_count, e.category, e.species or "", e.count)
                for e in session.scalars(select(Event)).all()
            )
    return detections, events


def test_station_events_are_the_same_on_opencl(
    broker, tmp_path: Path, images: Path, models_dir: Path
) -> None:
    require_opencl()
    reference = run_station(broker, tmp_path / "ort", images, models_dir, "onnxruntime")
    opencl = run_station(broker, tmp_path / "ocl", images, models_dir, "opencl")
    assert opencl[1] == reference[1]  # the same events: frames, category, species, count
    assert len(reference[0]) >= 3
    assert len(opencl[0]) == len(reference[0])
    for ours, theirs in zip(opencl[0], reference[0], strict=True):
        assert ours[:3] == theirs[:3]  # same frame, label, category
        # confidence and box agree to within 0.01 after rounding to 2 decimals (fp32 summation order)
        assert all(abs(a - b) <= 0.011 for a, b in zip(ours[3:], theirs[3:], strict=True)), (ours, theirs)


def test_detect_cli_gives_the_same_boxes_on_opencl(tmp_path: Path, images: Path, models_dir: Path) -> None:
    require_opencl()
    results = {}
    for backend in ("onnxruntime", "opencl"):
        out = tmp_path / f"{backend}.json"
        done = subprocess.run(
            [sys.executable, "-m", "yaguar.engine.cli", "detect", str(images / "classic"), "-o", str(out),
             "--model-dir", str(models_dir), "--backend", backend, "--no-progress"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        data = json.loads(out.read_text())
        results[backend] = {
            image["file"]: sorted((d["category"], round(d["conf"], 2)) for d in image["detections"] or [])
            for image in data["images"]
        }
    assert results["opencl"].keys() == results["onnxruntime"].keys()
    for name, boxes in results["onnxruntime"].items():
        ours = results["opencl"][name]
        assert [c for c, _ in ours] == [c for c, _ in boxes], name
        assert all(abs(a - b) <= 0.011 for (_, a), (_, b) in zip(ours, boxes, strict=True)), name
