"""Camtrap DP from deployment records: a camera moved once exports two deployments with their own
position, site, habitat, camera set-up and bait; frames outside every record of their camera are left out
and counted; each event is an event-level observation beside the media-level ones, and a box a reviewer
corrected on its own has its human observation beside the machine's; the package is valid
against the standard."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.test_exports_formats import _localise, standard  # noqa: F401 - a fixture
from tests.support.dashboard_web import add_user, seed
from tests.support.prerequisites import require_data
from yaguar.server.dashboard.box_review import BoxReview
from yaguar.server.dashboard_config import ExportMetadata
from yaguar.server.deployments import records
from yaguar.server.exports import camtrap_dp
from yaguar.server.schema import upgrade
from yaguar.storage.db import make_db_engine, make_session_factory
from yaguar.storage.models import Detection, Media

frictionless = pytest.importorskip("frictionless")
START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # seed(): one event every 10 min, cameras in turn


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    data = require_data()
    engine = make_db_engine(f"sqlite:///{tmp_path / 'station.db'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    seed(factory, tmp_path / "media", data, events=12, devices=("cam-01", "cam-02", "cam-03"), start=START)
    yield factory
    engine.dispose()


def test_deployments_from_records(sessions, standard: Path, tmp_path: Path) -> None:  # noqa: F811
    with sessions() as db, db.begin():
        first = records.add(
            db,
            "cam-01",
            records.parse(
                {
                    "latitude": -22.25,
                    "longitude": -60.75,
                    "uncertainty_m": 15,
                    "start": "2026-11-20T06:00:00-03:00",
                    "site": "Sendero Norte",
                    "habitat": "bosque chaqueño",
                    "camera_model": "Raspberry Pi HQ",
                    "camera_height_m": 0.45,
                    "bait": True,
                }
            ),
            "ana",
        )
        # cam-01's events are at 10:00, 10:30, 11:00, 11:30 UTC; moved at 10:45
        moved = records.place(db, "cam-01", -22.26, -60.76, datetime(2026, 11, 20, 10, 45, tzinfo=UTC), "ana")
        # cam-03's events at 10:20 and 10:50 come before its only deployment
        late = records.add(
            db,
            "cam-03",
            records.parse({"latitude": -22.3, "longitude": -60.8, "start": "2026-11-20T11:00Z"}),
            "ana",
        )
    # one box of one frame corrected on its own by a reviewer
    reviewer = add_user(sessions, "rev", "reviewer")
    with sessions() as db, db.begin():
        det = db.scalars(select(Detection).join(Media).where(Media.device_id == "cam-02")).first()
        db.add(BoxReview(detection_id=det.id, user_id=reviewer, category="animal", species="Pecari tajacu"))
        box_id = det.id
    package = tmp_path / "package"
    with sessions() as db:
        summary = camtrap_dp.write_package(db, package, ExportMetadata(contributor="Test ranger"))
    assert (summary.deployments, summary.media, summary.outside_deployments) == (4, 10, 2)

    rows = {r["deploymentID"]: r for r in csv.DictReader((package / "deployments.csv").open())}
    assert set(rows) == {f"cam-01-{first.id}", f"cam-01-{moved.id}", "cam-02", f"cam-03-{late.id}"}
    a, b = rows[f"cam-01-{first.id}"], rows[f"cam-01-{moved.id}"]
    assert (a["latitude"], a["longitude"], a["coordinateUncertainty"]) == ("-22.25", "-60.75", "15")
    assert (a["locationName"], a["habitat"], a["cameraModel"], a["cameraHeight"], a["baitUse"]) == (
        "Sendero Norte",
        "bosque chaqueño",
        "Raspberry Pi HQ",
        "0.45",
        "true",
    )
    assert (a["deploymentStart"], a["deploymentEnd"]) == (
        "2026-11-20T06:00:00-03:00",
        "2026-11-20T07:45:00-03:00",
    )
    assert (b["latitude"], b["deploymentStart"], b["locationName"]) == (
        "-22.26",
        "2026-11-20T07:45:00-03:00",
        "Sendero Norte",
    )
    assert a["locationID"] != b["locationID"], "a moved camera is at another location"

    observations = list(csv.DictReader((package / "observations.csv").open()))
    events = [o for o in observations if o["observationLevel"] == "event"]
    media = [o for o in observations if o["observationLevel"] == "media"]
    assert len(events) == 10 and media
    by_deployment = {o["deploymentID"] for o in events}
    assert by_deployment == set(rows)
    human_box = next(o for o in media if o["observationID"] == f"d{box_id}-human")
    machine_box = next(o for o in media if o["observationID"] == f"d{box_id}")
    assert (human_box["scientificName"], human_box["classificationMethod"], human_box["classifiedBy"]) == (
        "Pecari tajacu",
        "human",
        "rev",
    )
    assert human_box["bboxX"] == machine_box["bboxX"] and machine_box["classificationMethod"] == "machine"
    frames = list(csv.DictReader((package / "media.csv").open()))
    assert sorted(f["deploymentID"] for f in frames).count(f"cam-01-{first.id}") == 2

    descriptor = _localise(package, standard)
    (package / "local.json").write_text(json.dumps(descriptor))
    report = frictionless.validate(str(package / "local.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:20]
