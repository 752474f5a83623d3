"""Clips from the field: chunks checked by the validator, joined once by the station's clip store (real
SQLite, real media folder), their frames analysed by the real models, and an alert as for a burst."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from tests.support.broker import Broker
from tests.support.engine import read_bgr
from tests.support.mqtt_client import mqtt_client
from tests.support.station import running_station
from tests.support.videos import write_video
from yaguar.agent.cameras.base import local_now
from yaguar.agent.clips import finished_clips, spool_clip
from yaguar.agent.spool import Spool
from yaguar.alerts.config import AlertsConfig
from yaguar.alerts.deliveries import DeliveryPlanner
from yaguar.alerts.metrics import AlertMetrics
from yaguar.alerts.models import Alert
from yaguar.alerts.outbox import Outbox
from yaguar.engine.analyser import Analyser, FrameInput
from yaguar.engine.config import PipelineConfig
from yaguar.protocol.clip import ClipChunkMeta, split_clip, to_properties, validate_clip_chunk
from yaguar.protocol.errors import ProtocolError
from yaguar.server.clip_store import ClipStore
from yaguar.server.ingest.media_store import MediaStore
from yaguar.server.pipeline.store import store_results
from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.models import DeadLetter, Event, Media

TOPIC = "yaguar/v1/cam-rio-01/clip"


def _clip(tmp_path: Path, images: Path) -> bytes:
    """6 s of MP4/H.264: 2 s of empty scene (the pre-roll), then jaguars."""

    def view(name: str) -> np.ndarray:
        return cv2.resize(read_bgr(images / "jaguar" / name), (480, 320))

    frames = [view("AABP_17_20051024_0559.jpg")] * 20 + [view("AABP_13_20051007_1205.jpg")] * 40
    return write_video(tmp_path / "clip.mp4", frames, fps=10).read_bytes()


def _chunks(data: bytes, clip_id: str = "clip-1") -> list[tuple[ClipChunkMeta, bytes]]:
    started = local_now() - timedelta(seconds=10)
    return [
        (
            ClipChunkMeta(
                device="cam-rio-01",
                seq=100 + i,
                clip_id=clip_id,
                event_id=f"evt-{clip_id}",
                started_at=started,
                trigger_at=started + timedelta(seconds=2),
                trigger="pir",
                fps=10,
                **fields,
            ),
            payload,
        )
        for i, (fields, payload) in enumerate(split_clip(data, chunk_bytes=len(data) // 5 + 1))
    ]


def _checked(meta: ClipChunkMeta, payload: bytes) -> ClipChunkMeta:
    """What crossed the wire: properties out and back through the validator."""
    return validate_clip_chunk(TOPIC, payload, to_properties(meta))


def test_the_validator_refuses_bad_chunks(tmp_path: Path, images: Path) -> None:
    meta, payload = _chunks(_clip(tmp_path, images))[1]
    assert _checked(meta, payload) == meta
    bad = [
        ("checksum_mismatch", TOPIC, payload[:-1] + bytes([payload[-1] ^ 1]), meta),
        ("size_mismatch", TOPIC, payload + b"x", meta),
        ("device_mismatch", "yaguar/v1/cam-other/clip", payload, meta),
        ("bad_topic", "yaguar/v1/cam-rio-01/frame", payload, meta),
        ("chunk_out_of_range", TOPIC, payload, meta.model_copy(update={"chunk_index": meta.chunk_count})),
        ("empty_payload", TOPIC, b"", meta),
    ]
    for reason, topic, body, chunk in bad:
        with pytest.raises(ProtocolError) as caught:
            validate_clip_chunk(topic, body, to_properties(chunk))
        assert caught.value.reason == reason


def test_chunks_in_any_order_make_one_clip_once_and_it_alerts(
    tmp_path: Path, images: Path, models_dir: Path
) -> None:
    engine = make_db_engine(f"sqlite:///{tmp_path / 'station.db'}")
    upgrade(engine)
    sessions = make_session_factory(engine)
    store = ClipStore(MediaStore(tmp_path / "media"), sessions, sample_every_s=1.0)
    data = _clip(tmp_path, images)
    chunks = [(_checked(m, p), p) for m, p in _chunks(data)]
    assert len(chunks) == 5

    # Reordered, with a duplicate, chunk 2 held back: nothing is joined yet.
    for index, expected in ((3, "stored"), (0, "stored"), (4, "stored"), (0, "duplicate"), (1, "stored")):
        outcome = store.receive(*chunks[index])
        assert outcome.status == expected and outcome.clip_path is None
    # Chunk 3 again with other bytes (its own checksum right): refused.
    meta3, payload3 = chunks[3]
    forged = payload3[::-1]
    with pytest.raises(ProtocolError) as caught:
        store.receive(meta3.model_copy(update={"sha256": hashlib.sha256(forged).hexdigest()}), forged)
    assert caught.value.reason == "chunk_conflict"
    meta2, payload2 = chunks[2]
    with pytest.raises(ProtocolError) as caught:
        store.receive(meta2.model_copy(update={"clip_size": meta2.clip_size + 1}), payload2)
    assert caught.value.reason == "clip_mismatch"
    # A forged last chunk completes a clip that does not match its sha256: refused and dropped.
    forged = payload2[::-1]
    with pytest.raises(ProtocolError) as caught:
        store.receive(meta2.model_copy(update={"sha256": hashlib.sha256(forged).hexdigest()}), forged)
    assert caught.value.reason == "clip_checksum_mismatch"

    done = store.receive(*chunks[2])
    assert done.status == "stored" and done.clip_path is not None
    assert (tmp_path / "media" / done.clip_path).read_bytes() == data
    assert len(done.media_ids) == 6  # one frame a second of a 6 s clip
    assert store.receive(*chunks[4]).status == "duplicate"  # a late copy after the join
    with sessions() as db:
        frames = db.scalars(
            select(Media).where(Media.id.in_(done.media_ids)).order_by(Media.captured_at)
        ).all()
        assert db.scalar(select(func.count(Media.id))) == 6
        assert [f.burst_index for f in frames] == [-2, -1, 0, 1, 2, 3]  # two seconds of pre-roll
        assert {f.agent_event_id for f in frames} == {"evt-clip-1"} and {f.process_state for f in frames} == {
            "pending"
        }
        assert frames[0].captured_at == chunks[0][0].started_at

    # The station's analysis of those frames, with the alert rules in the same transaction.
    analyser = Analyser(
        PipelineConfig(enabled=True, model_dir=models_dir, classifiers=[], skip_without_motion=False)
    )
    alerts = AlertsConfig.model_validate(
        {
            "enabled": True,
            "recipients": [{"name": "ranger", "phone": "+573001234567"}],
            "rules": [{"name": "animals", "categories": ["animal"], "min_confidence": 0.1}],
        }
    )
    metrics = AlertMetrics(CollectorRegistry())
    outbox = Outbox(alerts, DeliveryPlanner(alerts, "http://127.0.0.1:8080", metrics), metrics)
    inputs = []
    for frame in frames:
        item = FrameInput(frame.id, frame.device_id, frame.agent_event_id)
        item.data = (tmp_path / "media" / frame.path).read_bytes()
        inputs.append(analyser.decode(item))
    with sessions.begin() as db:
        store_results(db, analyser.analyse(inputs), analyser.model_ident, 60, [outbox.on_event])
    with sessions() as db:
        events = db.scalars(select(Event)).all()
        assert len(events) == 1 and events[0].category == "animal" and events[0].frame_count == 6
        assert db.scalar(select(func.count(Alert.id))) == 1

    # A clip whose agent lost a chunk for good is dead-lettered with the reason.
    lost = _chunks(data, clip_id="clip-lost")
    store.receive(*lost[0])
    assert store.expire_incomplete(max_age_s=0) == 1
    with sessions() as db:
        letter = db.scalars(select(DeadLetter)).one()
        assert letter.reason == "clip_incomplete" and "[1, 2, 3, 4]" in letter.detail


def test_a_clip_spooled_again_after_a_crash_is_stored_once(tmp_path: Path, images: Path) -> None:
    """The agent died after spooling a clip's chunks but before dropping the clip's files: at the next
    start it spools them all again, under new seqs; the station answers the second copies ``duplicate``."""
    data = _clip(tmp_path, images)
    clips = tmp_path / "clips"
    clips.mkdir()
    started = local_now() - timedelta(seconds=10)
    marker = {
        "clip_id": "clip-x",
        "event_id": "evt-x",
        "trigger": "pir",
        "started_at": started.isoformat(),
        "trigger_at": (started + timedelta(seconds=2)).isoformat(),
        "fps": 10,
        "truncated": False,
    }
    spool = Spool(tmp_path / "spool")
    spooled = []
    for _ in range(2):
        (clips / "clip-x.mp4").write_bytes(data)
        (clips / "clip-x.json").write_text(json.dumps(marker))
        spooled.append(spool_clip(spool, "cam-rio-01", finished_clips(clips)[0], 16 * 1024))
    assert spooled[0] == spooled[1] >= 2 and spool.depth == 2 * spooled[0]
    assert not list(clips.iterdir())

    engine = make_db_engine(f"sqlite:///{tmp_path / 'station.db'}")
    upgrade(engine)
    store = ClipStore(MediaStore(tmp_path / "media"), make_session_factory(engine))
    statuses = []
    for item in spool.send_order():
        payload = item.read_payload()
        assert isinstance(item.meta, ClipChunkMeta)
        statuses.append(store.receive(_checked(item.meta, payload), payload).status)
    assert statuses == ["stored"] * spooled[0] + ["duplicate"] * spooled[0]
    with make_session_factory(engine)() as db:
        assert db.scalar(select(func.count(Media.id))) == 6


def test_the_station_refuses_a_damaged_chunk_over_mqtt(broker: Broker, tmp_path: Path, images: Path) -> None:
    """What crossed the socket: a chunk whose bytes do not match its sha256 is dead-lettered with the
    reason, counted, and answered ``rejected``; the good chunk beside it is answered ``stored``."""
    (good, good_payload), (bad, bad_payload) = _chunks(_clip(tmp_path, images))[:2]
    with (
        running_station(broker, tmp_path / "station", http=False, ingest={"clips": True}) as station,
        mqtt_client(broker, "cam-rio-01") as agent,
    ):
        receiver = next(c for c in station.components if c.name == "clips")
        assert receiver.link.wait_connected(10)
        agent.subscribe("yaguar/v1/cam-rio-01/ack")
        agent.publish(TOPIC, good_payload, properties=to_properties(good))
        agent.publish(TOPIC, bad_payload[:-1] + bytes([bad_payload[-1] ^ 1]), properties=to_properties(bad))
        answers = {a["seq"]: a for a in (json.loads(m.payload) for m in agent.wait_for(2))}
        assert answers[good.seq]["status"] == "stored"
        assert answers[bad.seq] == {
            "v": 1,
            "seq": bad.seq,
            "status": "rejected",
            "reason": "checksum_mismatch",
        }
        with station.session_factory() as db:
            letter = db.scalars(select(DeadLetter)).one()
        assert (letter.reason, letter.device_id) == ("checksum_mismatch", "cam-rio-01")
        assert receiver.metrics.rejected.labels("checksum_mismatch")._value.get() == 1
