"""The pipeline component against a real SQLite database and the real models: frames stored by ingest
are analysed, results and events stored, hooks called, bad frames failed with a reason, and frames left
pending by a stopped station processed after a restart."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.engine import encode, read_bgr
from tests.support.jpegs import with_dimensions
from tests.support.rows import media_row
from yaguar.server.config import config_from_dict
from yaguar.server.context import StationContext, StationHooks
from yaguar.server.pipeline import PipelineComponent, factory
from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.models import Detection, Device, Event, Media

T0 = datetime(2026, 3, 14, 23, 5, tzinfo=UTC)


@dataclass
class Station:
    ctx: StationContext
    seq: int = 0

    def add_frame(
        self,
        data: bytes,
        device: str = "cam-01",
        burst: str = "burst-1",
        at: datetime = T0,
        notify: bool = True,
        write_file: bool = True,
    ) -> int:
        """Store a frame the way ingest does (file + pending row), then fire media_committed."""
        self.seq += 1
        rel = f"{device}/{self.seq:06d}.jpg"
        path = self.ctx.media_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if write_file:
            path.write_bytes(data)
        with self.ctx.session_factory.begin() as session:
            if session.get(Device, device) is None:
                session.add(Device(id=device))
                session.flush()
            media = media_row(
                device,
                self.seq,
                at,
                rel,
                agent_event_id=burst,
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                process_state="pending",
            )
            session.add(media)
            session.flush()
            media_id = media.id
        if notify:
            StationHooks.fire(self.ctx.hooks.media_committed, [media_id])
        return media_id

    def wait_processed(self, ids: list[int], timeout: float = 60) -> dict[int, Media]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.ctx.session_factory() as session:
                rows = {m.id: m for m in session.scalars(select(Media).where(Media.id.in_(ids)))}
            if all(m.process_state != "pending" for m in rows.values()):
                return rows
            time.sleep(0.1)
        raise AssertionError(
            f"frames still pending: {[i for i, m in rows.items() if m.process_state == 'pending']}"
        )


def _context(tmp_path: Path, models_dir: Path, **pipeline: object) -> StationContext:
    settings = {
        "enabled": True,
        "model_dir": str(models_dir),
        "batch_wait_ms": 5,
        "poll_interval_s": 0.5,
        "skip_without_motion": False,
        **pipeline,
    }
    config = config_from_dict(
        {
            "storage": {
                "database_url": f"sqlite:///{tmp_path / 'station.db'}",
                "media_root": str(tmp_path / "media"),
                "sqlite_synchronous": "NORMAL",
            },
            "pipeline": settings,
        },
        env={},
    )
    engine = make_db_engine(config.storage.database_url, "NORMAL")
    upgrade(engine)
    return StationContext(
        config=config,
        engine=engine,
        session_factory=make_session_factory(engine),
        media_root=tmp_path / "media",
        metrics=CollectorRegistry(),
        hooks=StationHooks(),
    )


@pytest.fixture
def station(tmp_path: Path, models_dir: Path) -> Iterator[Station]:
    ctx = _context(tmp_path, models_dir)
    yield Station(ctx)
    ctx.engine.dispose()


def _running(station: Station) -> PipelineComponent:
    component = factory(station.ctx)
    assert component is not None
    component.start()
    assert component.unavailable is None
    return component


def test_frames_are_analysed_stored_and_grouped_into_events(station: Station, images: Path) -> None:
    in_transaction: list[tuple[int, str, bool]] = []
    committed: list[list[int]] = []
    lock = threading.Lock()

    def alert_hook(session: Session, event: Event) -> None:
        assert session.in_transaction()
        in_transaction.append((event.id, event.category, event.closed))

    def feed_hook(ids: list[int]) -> None:
        with lock:
            committed.append(ids)

    station.ctx.hooks.event_in_transaction.append(alert_hook)
    station.ctx.hooks.events_committed.append(feed_hook)
    component = _running(station)
    try:
        cougar = (images / "camera-trap" / "IMAG1065_cougar.JPG").read_bytes()
        empty = (images / "camera-trap" / "B013_IMG_0005_empty.jpeg").read_bytes()
        ids = [
            station.add_frame(cougar, burst="b1", at=T0),
            station.add_frame(cougar, burst="b1", at=T0 + timedelta(seconds=1)),
            station.add_frame(empty, device="cam-02", burst="b9", at=T0),
        ]
        # a frame much later on cam-01 starts a new event and closes the first
        ids.append(station.add_frame(empty, burst="b2", at=T0 + timedelta(minutes=30)))
        rows = station.wait_processed(ids)
    finally:
        component.stop()
    assert {m.process_state for m in rows.values()} == {"done"}
    with station.ctx.session_factory() as session:
        boxes = session.scalars(select(Detection).where(Detection.media_id == ids[0])).all()
        assert boxes and {b.category for b in boxes} == {"animal"}
        assert all(b.model == "yolox_nano@0.1.1" for b in boxes)
        assert any(
            b.species == "Puma concolor" and b.classifier == "mobilenet_v2_imagenet_quant@1.0" for b in boxes
        )
        first = session.get(Event, rows[ids[0]].event_id)
        assert rows[ids[1]].event_id == first.id and first.frame_count == 2
        assert first.category == "animal" and first.species == "Puma concolor" and first.count >= 1
        assert first.closed and "yolox_nano@0.1.1" in first.model
        assert first.utc_offset_min == -300
        other = session.get(Event, rows[ids[2]].event_id)
        assert other.device_id == "cam-02" and other.category == "blank"
        assert rows[ids[3]].event_id not in (first.id, other.id)
    assert {e[0] for e in in_transaction} >= {first.id, other.id}
    assert any(e == (first.id, "animal", True) for e in in_transaction)
    assert first.id in {i for ids_ in committed for i in ids_}
    done = station.ctx.metrics.get_sample_value("yaguar_pipeline_frames_total", {"outcome": "done"})
    assert done == 4


def test_bad_frames_fail_with_a_reason_and_the_pipeline_keeps_going(station: Station, images: Path) -> None:
    dog = (images / "classic" / "dog.jpg").read_bytes()
    bad = {
        "empty_payload": (images / "camera-trap" / "error_img.JPG").read_bytes(),
        "not_jpeg": encode(read_bgr(images / "classic" / "eagle.jpg"), ".png"),
        "image_too_large": with_dimensions(dog, 60000, 60000),
        "truncated_jpeg": dog[: len(dog) // 2],
    }
    component = _running(station)
    try:
        bad_ids = {reason: station.add_frame(data) for reason, data in bad.items()}
        good = station.add_frame(dog)
        rows = station.wait_processed([*bad_ids.values(), good])
        missing = station.add_frame(dog, write_file=False)  # the row is there, the file is gone
        rows.update(station.wait_processed([missing]))
    finally:
        component.stop()
    for reason, media_id in bad_ids.items():
        media = rows[media_id]
        assert media.process_state == "failed" and media.process_note and "\n" not in media.process_note
        assert media.event_id is None
        assert station.ctx.metrics.get_sample_value("yaguar_pipeline_dropped_total", {"reason": reason}) == 1
    assert "60000x60000" in rows[bad_ids["image_too_large"]].process_note
    assert rows[good].process_state == "done"
    assert rows[missing].process_state == "failed" and "cannot read" in rows[missing].process_note


def test_frames_left_pending_are_processed_after_a_restart(
    tmp_path: Path, models_dir: Path, images: Path
) -> None:
    ctx = _context(tmp_path, models_dir)
    station = Station(ctx)
    eagle = (images / "classic" / "eagle.jpg").read_bytes()
    # the station was stopped (or crashed) after ingest stored these, before the pipeline ran
    ids = [station.add_frame(eagle, at=T0 + timedelta(seconds=i), notify=False) for i in range(3)]
    ctx.engine.dispose()

    restarted = Station(_context(tmp_path, models_dir), seq=station.seq)
    component = _running(restarted)
    try:
        rows = restarted.wait_processed(ids)
    finally:
        component.stop()
    assert {m.process_state for m in rows.values()} == {"done"}
    with restarted.ctx.session_factory() as session:
        labels = session.scalars(select(Detection.label).where(Detection.media_id.in_(ids))).all()
    assert labels == ["bird"] * 3
    restarted.ctx.engine.dispose()


def test_motion_filter_skips_static_frames_and_says_why(
    tmp_path: Path, models_dir: Path, images: Path
) -> None:
    station = Station(_context(tmp_path, models_dir, skip_without_motion=True))
    empty = read_bgr(images / "camera-trap" / "B013_IMG_0005_empty.jpeg")
    component = _running(station)
    try:
        ids = [
            station.add_frame(encode(empty, quality=85 + i), burst="wind", at=T0 + timedelta(seconds=i))
            for i in range(3)
        ]
        rows = station.wait_processed(ids)
    finally:
        component.stop()
    assert rows[ids[0]].process_state == "done"  # nothing to compare the first frame with
    for media_id in ids[1:]:
        assert rows[media_id].process_state == "skipped"
        assert rows[media_id].process_note.startswith("no motion (day")
        assert rows[media_id].motion_score is not None and rows[media_id].event_id == rows[ids[0]].event_id
    station.ctx.engine.dispose()


def test_a_broken_model_leaves_the_station_running(tmp_path: Path, models_dir: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "yolox_nano.onnx").write_bytes(b"not a model")
    ctx = _context(tmp_path, tmp_path / "models")
    component = factory(ctx)
    component.start()  # does not raise
    assert component.unavailable and "\n" not in component.unavailable
    assert ctx.metrics.get_sample_value("yaguar_pipeline_errors_total", {"kind": "model"}) == 1
    component.stop()
    assert factory(_context(tmp_path / "off", models_dir, enabled=False)) is None
    ctx.engine.dispose()


def test_a_stop_in_the_middle_loses_nothing_and_repeats_nothing(
    tmp_path: Path, models_dir: Path, images: Path
) -> None:
    station = Station(_context(tmp_path, models_dir, batch_size=2, queue_size=4))
    eagle = (images / "classic" / "eagle.jpg").read_bytes()
    component = _running(station)
    ids = [station.add_frame(eagle, at=T0 + timedelta(seconds=i)) for i in range(12)]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # stop as soon as the first batch is stored
        with station.ctx.session_factory() as session:
            if session.scalars(select(Media.id).where(Media.process_state == "done")).first():
                break
        time.sleep(0.01)
    component.stop()  # frames in the queue are left pending
    with station.ctx.session_factory() as session:
        left = session.scalars(select(Media.id).where(Media.process_state == "pending")).all()
    second = _running(station)
    try:
        rows = station.wait_processed(ids)
    finally:
        second.stop()
    assert {m.process_state for m in rows.values()} == {"done"}
    with station.ctx.session_factory() as session:
        per_frame = [
            len(session.scalars(select(Detection).where(Detection.media_id == i)).all()) for i in ids
        ]
        events = session.scalars(select(Event)).all()
    assert per_frame == [1] * 12  # one bird each: no frame analysed twice
    assert len(events) == 1 and events[0].frame_count == 12
    assert len(left) < 12  # the stop came after some frames were done (usually most are left pending)
    station.ctx.engine.dispose()


def test_an_event_closes_when_its_camera_goes_quiet(tmp_path: Path, models_dir: Path, images: Path) -> None:
    station = Station(_context(tmp_path, models_dir, event_gap_s=0.5, poll_interval_s=0.1))
    closed_in_transaction: list[int] = []
    committed: list[int] = []
    station.ctx.hooks.event_in_transaction.append(
        lambda s, e: e.closed and closed_in_transaction.append(e.id)
    )
    station.ctx.hooks.events_committed.append(committed.extend)
    component = _running(station)
    try:
        media_id = station.add_frame((images / "classic" / "eagle.jpg").read_bytes())
        event_id = station.wait_processed([media_id])[media_id].event_id
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and event_id not in closed_in_transaction:
            time.sleep(0.05)
    finally:
        component.stop()
    with station.ctx.session_factory() as session:
        assert session.get(Event, event_id).closed
    assert closed_in_transaction == [event_id] and committed.count(event_id) == 2  # created, then closed
    station.ctx.engine.dispose()


def test_a_failing_event_hook_fails_its_frames_and_the_pipeline_goes_on(
    station: Station, images: Path
) -> None:
    def broken_alert_rule(session: Session, event: Event) -> None:
        raise KeyError("rule 7 has no channel")

    station.ctx.hooks.event_in_transaction.append(broken_alert_rule)
    component = _running(station)
    try:
        eagle = (images / "classic" / "eagle.jpg").read_bytes()
        first = station.add_frame(eagle)
        rows = station.wait_processed([first])
        station.ctx.hooks.event_in_transaction.remove(broken_alert_rule)
        second = station.add_frame(eagle, burst="b2", at=T0 + timedelta(seconds=5))
        rows.update(station.wait_processed([second]))
    finally:
        component.stop()
    assert rows[first].process_state == "failed"
    assert "rule 7 has no channel" in rows[first].process_note
    assert rows[second].process_state == "done"
    with station.ctx.session_factory() as session:  # the failed batch left nothing half-written
        assert session.scalars(select(Detection.media_id)).all() == [second]
