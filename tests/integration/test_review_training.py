"""Reviews teach the model: reviewed boxes on real frames exported as a training folder (species from
the review, reviewer and time in reviews.csv), and an admin's retrain that switches only when the new
model is not worse."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.support.config_files import write_station_config
from tests.support.rows import media_row
from tests.support.training import link
from yaguar.server import cli as station_cli
from yaguar.server.classifier_choice import latest_choice
from yaguar.server.dashboard.box_review import BoxReview
from yaguar.server.dashboard.models import Review
from yaguar.server.dashboard.users import create_user
from yaguar.server.exports.training_folder import write_training_folder
from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.models import Detection, Device, Event

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def _seed(sessions: sessionmaker[Session], media_root: Path, shared: Path) -> dict[str, int]:
    """Every jaguar frame as a one-frame event with its MegaDetector box (the machine said "Panthera");
    reviews: 9 corrected to Panthera onca by ana, one of them with its box reviewed as blank, one
    event called a false positive, one left unreviewed. Returns event ids by file name."""
    boxes = json.loads((shared / "reference" / "megadetector_v5_boxes.json").read_text())["images"]
    photos = sorted((shared / "images" / "jaguar").glob("*.jpg"))
    ids: dict[str, int] = {}
    with sessions.begin() as db:
        ana = create_user(db, "ana", "a-long-password-1", "reviewer")
        db.add(Device(id="cam-01"))
        db.flush()
        for i, photo in enumerate(photos):
            link(photo, media_root / "cam-01")
            at = T0 + timedelta(hours=i)
            event = Event(device_id="cam-01", started_at=at, ended_at=at, frame_count=1, category="animal",
                          species="Panthera", count=1, confidence=0.6, model="yolox_nano@0.1.1", closed=True)  # fmt: skip
            db.add(event)
            db.flush()
            media = media_row("cam-01", i, at, f"cam-01/{photo.name}", size=photo.stat().st_size,
                              process_state="done", event_id=event.id)  # fmt: skip
            db.add(media)
            db.flush()
            for box in boxes[photo.name]:
                x, y, w, h = box["bbox"]
                db.add(Detection(media_id=media.id, model="yolox_nano@0.1.1", category="animal", label="cat",
                                 confidence=box["conf"], x=x, y=y, w=w, h=h, species="Panthera",
                                 species_confidence=0.5, classifier="mobilenet_v2_imagenet_quant@1.0"))  # fmt: skip
            db.flush()
            ids[photo.name] = event.id
            if i == 9:
                continue  # not reviewed
            action, category, species = (
                ("false_positive", "blank", None) if i == 10 else ("correct", "animal", "Panthera onca")
            )
            db.add(Review(event_id=event.id, user_id=ana.id, created_at=at + timedelta(days=1), action=action,
                          category=category, species=species, count=1 if species else 0))  # fmt: skip
            if i == 0:
                det = db.query(Detection).filter_by(media_id=media.id).first()
                db.add(BoxReview(detection_id=det.id, user_id=ana.id, category="blank", species=None))
    return ids


@pytest.fixture
def station(tmp_path: Path, shared_data: Path) -> tuple[sessionmaker[Session], Path]:
    engine = make_db_engine(f"sqlite:///{tmp_path / 'station.db'}")
    upgrade(engine)
    sessions = make_session_factory(engine)
    _seed(sessions, tmp_path / "media", shared_data)
    return sessions, tmp_path / "media"


def test_reviewed_boxes_become_a_training_folder(
    station: tuple[sessionmaker[Session], Path], tmp_path: Path
) -> None:
    sessions, media_root = station
    with sessions() as db:
        export = write_training_folder(db, media_root, tmp_path / "reviews")
    assert export.crops == {"Panthera onca": 8}
    assert export.skipped == {"box_reviewed_not_animal": 1, "event_reviewed_not_animal": 1, "not_reviewed": 1}
    folder = tmp_path / "reviews"
    assert (folder / ".yaguar-crops").exists()
    with open(folder / "reviews.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and {r["reviewer"] for r in rows} == {"ana"}
    assert {r["source"] for r in rows} == {"event review"} and rows[0]["reviewed_at"].startswith("2026-11-2")
    crop = cv2.imread(str(folder / rows[0]["file"]))
    assert crop is not None and 100 < crop.shape[1] < 2000  # a box, not the whole 2048-wide frame


def test_admin_retrains_on_reviews_and_switches(
    station: tuple[sessionmaker[Session], Path], tmp_path: Path, shared_data: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    sessions, media_root = station
    herons = tmp_path / "inat"  # another source beside the reviews, as an iNaturalist download would be
    for photo in sorted((shared_data / "camtrap-dp-1.0.2" / "example" / "media").glob("*.JPG")):
        link(photo, herons / "garza real")
    config = write_station_config(
        tmp_path,
        storage={"media_root": media_root},
        pipeline={"model_dir": shared_data / "models", "manifest_dir": tmp_path / "trained"},
    )
    (tmp_path / "trained").mkdir()
    args = [
        "--config",
        str(config),
        "classifiers",
        "retrain",
        "--name",
        "revisado",
        "--folder",
        str(herons),
        "--use",
    ]
    assert station_cli.main(args) == 0
    out = capsys.readouterr().out
    assert "switched / cambiado" in out
    with sessions() as db:
        choice = latest_choice(db)
        assert choice is not None and choice.chosen_by == "cli"
        (name,) = json.loads(choice.classifiers)
    assert name.startswith("revisado_") and (tmp_path / "trained" / f"{name}.onnx").is_file()
    card = (tmp_path / "trained" / f"{name}.card.md").read_text()
    assert "| *Panthera onca* | jaguar | jaguar | 8 |" in card and "training/reviews" in card
