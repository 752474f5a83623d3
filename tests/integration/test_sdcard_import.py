"""``yaguar-station import``: an SD card with real EXIF into a real station database, as a user runs it."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import cv2
import pytest
from sqlalchemy import func, select

from tests.support.config_files import write_station_config
from tests.support.exif import copy_with_exif
from tests.support.videos import write_video
from yaguar.alerts.models import Alert
from yaguar.server.analysis.filters import AnalysisFilter
from yaguar.server.analysis.numbers import species_counts
from yaguar.server.dashboard.pages_clip import clip_of
from yaguar.server.dashboard.queries import FeedFilter, feed_page
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.models import Detection, Device, Event, Media


def _card(root: Path, shared_data: Path) -> Path:
    card = root / "DCIM" / "100RECNX"
    card.mkdir(parents=True)
    for frame in sorted((shared_data / "camtrap-dp-1.0.2" / "example" / "media").glob("*.JPG"))[:3]:
        shutil.copy(frame, card / frame.name)  # real Reconyx EXIF: 2021-04-11 20:43:09.., no offset
    jaguars = ["AABP_13_20051007_1205.jpg", "AABP_9_20051024_0559.jpg", "AREAS_27_20051011_0438.jpg"]
    for day, name in enumerate(jaguars):
        suffix = ".png" if day == 0 else ".JPG"
        when = f"2021:04:{12 + day:02d} 05:30:00"
        copy_with_exif(
            shared_data / "images" / "jaguar" / name, card / f"JAG{day}{suffix}", when, "-05:00", 2
        )
    (card / "IMG_0000.JPG").write_bytes(b"")  # a card always has one: the camera died mid-write
    undated = copy_with_exif(
        shared_data / "images" / "jaguar" / "RL_10_20051029_0045.jpg", card / "JAG9.JPG", None
    )
    stamp = datetime(2021, 4, 20, 3, 0, tzinfo=UTC).timestamp()
    os.utime(undated, (stamp, stamp))
    jaguar = cv2.resize(
        cv2.imread(str(shared_data / "images" / "jaguar" / "AABP_9_20051024_0559.jpg")), (480, 320)
    )
    write_video(card / "VID0001.MP4", [jaguar] * 40, fps=10, creation_time="2021-04-15T23:00:00Z")  # 4 s
    return root / "DCIM"


def _config(tmp_path: Path, models_dir: Path, classify: bool = True, closer_look: bool = True) -> Path:
    pipeline: dict[str, Any] = {"enabled": True, "model_dir": models_dir, "verify_sha256": False}
    if not classify:
        pipeline["classifiers"] = []
    if not closer_look:
        pipeline["look"] = {"closer_input": [0, 0], "motion_crops": False}
    alerts = {
        "enabled": True,
        "recipients": [{"name": "ranger", "phone": "+573001234567"}],
        "rules": [{"name": "animals", "categories": ["animal"], "min_confidence": 0.1}],
    }
    return write_station_config(tmp_path, pipeline=pipeline, alerts=alerts)


def _station(config: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "yaguar.server.cli",
        "--config",
        str(config),
        "--log-level",
        "WARNING",
        *args,
    ]


def _import(config: Path, card: Path, camera: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = _station(config, "import", str(card), "--camera", camera, "--timezone", "America/Bogota")
    run = subprocess.run(
        [*command, "--no-progress", *extra], capture_output=True, text=True, timeout=240, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def _snapshot(db_path: Path, camera: str) -> tuple[object, ...]:
    """What an import leaves in the database, by content (not by row id)."""
    sessions = make_session_factory(make_db_engine(f"sqlite:///{db_path}"))
    with sessions() as db:
        media = db.scalars(select(Media).where(Media.device_id == camera).order_by(Media.seq)).all()
        frames = tuple(
            (m.seq, m.sha256, m.captured_at, m.process_state, m.agent_event_id, round(m.motion_score or 0, 4))
            for m in media
        )
        boxes = tuple(
            db.execute(
                select(Media.seq, Detection.category, func.round(Detection.confidence, 4))
                .join(Media, Detection.media_id == Media.id)
                .where(Media.device_id == camera)
                .order_by(Media.seq, Detection.confidence)
            ).all()
        )
        events = tuple(
            db.execute(
                select(Event.started_at, Event.ended_at, Event.frame_count, Event.category, Event.closed)
                .where(Event.device_id == camera)
                .order_by(Event.started_at)
            ).all()
        )
    return frames, boxes, events


@pytest.mark.slow
def test_an_imported_card_is_in_the_feed_export_and_analyses_once(
    tmp_path: Path, shared_data: Path, models_dir: Path
) -> None:
    card, config = _card(tmp_path, shared_data), _config(tmp_path, models_dir)
    first = _import(config, card, "cam-sd-01", "--position", "4.61,-74.08")
    assert (
        "cam-sd-01: 8 pictures and 1 video(s) read; 11 new frames, 0 already imported, 1 not imported; 11 analysed"
        in first.stdout
    )
    assert "IMG_0000.JPG: not imported (the image is empty (0 bytes))" in first.stderr
    sessions = make_session_factory(make_db_engine(f"sqlite:///{tmp_path / 'station.db'}"))
    with sessions() as db:
        media = db.scalars(
            select(Media).where(Media.device_id == "cam-sd-01").order_by(Media.captured_at)
        ).all()
        assert len(media) == 11 and {m.trigger for m in media} == {"sdcard", "sdcard_filetime"}
        undated = next(m for m in media if m.trigger == "sdcard_filetime")  # recorded as such, for good
        assert undated.captured_at == datetime(2021, 4, 20, 3, 0, tzinfo=UTC)
        assert {m.process_state for m in media} <= {"done", "skipped"}
        assert media[0].captured_at == datetime(2021, 4, 12, 1, 43, 9, tzinfo=UTC)  # 20:43:09 in Bogota
        assert media[0].utc_offset_min == -300
        assert media[-6].captured_at == datetime(2021, 4, 14, 10, 30, tzinfo=UTC)
        video = [m for m in media if m.capture_id.startswith("sd-")]  # a frame a second of the 4 s video
        assert [m.captured_at for m in video] == [
            datetime(2021, 4, 15, 23, 0, s, tzinfo=UTC) for s in range(4)
        ]
        player = clip_of(video, tmp_path / "media")  # its event page plays the video with the boxes
        assert (
            player is not None and player.url.startswith("/clips/cam-sd-01/sd-") and len(player.frames) == 4
        )
        events = db.scalars(select(Event).where(Event.device_id == "cam-sd-01")).all()
        assert len(events) == 6 and all(e.closed for e in events)  # the heron burst, then a jaguar a day
        assert any(e.category == "animal" for e in events)
        device = db.get(Device, "cam-sd-01")
        assert device is not None and (device.latitude, device.longitude) == (4.61, -74.08)
        assert db.scalar(select(func.count(Alert.id))) == 0  # old pictures: no alerts

        feed = feed_page(db, FeedFilter(camera="cam-sd-01"), None, 50)
        assert len(feed.rows) == 6
        counts = species_counts(db, AnalysisFilter(start=date(2021, 4, 1), end=date(2021, 4, 30)))
        assert any(c.camera == "cam-sd-01" and c.events >= 1 for c in counts)
    before = _snapshot(tmp_path / "station.db", "cam-sd-01")

    again = _import(config, card, "cam-sd-01")
    assert "8 pictures and 1 video(s) read; 0 new frames, 11 already imported, 1 not imported" in again.stdout
    assert _snapshot(tmp_path / "station.db", "cam-sd-01") == before

    out = tmp_path / "export"
    export = subprocess.run(
        _station(config, "export", "--format", "camtrap-dp", "--out", str(out)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert export.returncode == 0, export.stdout + export.stderr
    rows = list(csv.DictReader((out / "media.csv").open()))
    assert len(rows) == 11
    assert min(r["timestamp"] for r in rows) == "2021-04-11T20:43:09-05:00"
    deployments = list(csv.DictReader((out / "deployments.csv").open()))
    starts = [datetime.fromisoformat(d["deploymentStart"].replace("Z", "+00:00")) for d in deployments]
    assert starts == [datetime(2021, 4, 12, 1, 43, 9, tzinfo=UTC)]  # the card's first picture
    observed = [
        o for o in csv.DictReader((out / "observations.csv").open()) if o["observationType"] == "animal"
    ]
    assert observed and {o["deploymentID"] for o in observed} == {deployments[0]["deploymentID"]}

    # Asked for, old pictures do alert: one jaguar of the card as another camera (one picture to analyse).
    jaguar = tmp_path / "card2" / "DCIM"
    jaguar.mkdir(parents=True)
    shutil.copy(card / "100RECNX" / "JAG1.JPG", jaguar / "JAG1.JPG")
    _import(config, jaguar, "cam-sd-02", "--alerts")
    with sessions() as db:
        assert db.scalar(select(func.count(Alert.id))) >= 1


@pytest.mark.slow
def test_an_import_killed_halfway_is_completed_by_running_it_again(
    tmp_path: Path, shared_data: Path, models_dir: Path
) -> None:
    card = _card(tmp_path / "card", shared_data)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    clean.mkdir(), killed.mkdir()
    # What is tested is the kill and the rerun, not the analysis: first pass only (cheaper).
    _import(_config(clean, models_dir, classify=False, closer_look=False), card, "cam-sd-01")

    config = _config(killed, models_dir, classify=False, closer_look=False)
    command = _station(config, "import", str(card), "--camera", "cam-sd-01", "--timezone", "America/Bogota")
    child = subprocess.Popen([*command, "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline, analysed = time.monotonic() + 180, 0
    while child.poll() is None and time.monotonic() < deadline and analysed == 0:
        time.sleep(0.02)
        if (killed / "station.db").exists():
            with sqlite3.connect(killed / "station.db") as db:
                try:
                    analysed = db.execute(
                        "select count(*) from media where process_state != 'importing'"
                    ).fetchone()[0]
                except sqlite3.OperationalError:
                    continue  # the schema is still being made
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=30)
    with sqlite3.connect(killed / "station.db") as db:
        left = db.execute("select count(*) from media where process_state = 'importing'").fetchone()[0]
    assert left > 0, "the import finished before it could be killed halfway"

    rerun = _import(config, card, "cam-sd-01")
    assert "8 pictures and 1 video(s) read; 0 new frames, 11 already imported, 1 not imported" in rerun.stdout
    assert _snapshot(killed / "station.db", "cam-sd-01") == _snapshot(clean / "station.db", "cam-sd-01")
