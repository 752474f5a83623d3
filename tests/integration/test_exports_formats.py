"""Exports from a real database with real frames, boxes and a human review: Camtrap DP 1.0.2 validated
with frictionless against the standard's own schemas and profile (local copies, nothing downloaded),
MegaDetector batch output 1.6 checked against its format, and the events CSV."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from sqlalchemy.orm import Session, sessionmaker

from tests.support.dashboard_web import add_user, seed
from tests.support.prerequisites import require_data
from yaguar.engine.batch_output import validate_batch_output
from yaguar.server.dashboard.models import Review
from yaguar.server.dashboard_config import ExportMetadata
from yaguar.server.exports import camtrap_dp, csv_export, megadetector
from yaguar.server.exports.records import ExportScope
from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.models import Device

frictionless = pytest.importorskip("frictionless")


@pytest.fixture(scope="module")
def standard() -> Path:
    data = require_data("camtrap-dp-1.0.2").parent
    return data / "camtrap-dp-1.0.2"


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    data = require_data()
    work = tmp_path_factory.mktemp("exports")
    engine = make_db_engine(f"sqlite:///{work / 'station.db'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    ids = seed(factory, work / "media", data, events=12, devices=("cam-01", "cam-02", "cam-03"))
    with factory() as db, db.begin():
        db.get(Device, "cam-03").latitude = None  # no position of its own: the station's is used
        db.get(Device, "cam-03").longitude = None
    reviewer = add_user(factory, "rev", "reviewer")
    with factory() as db, db.begin():
        db.add(
            Review(
                event_id=ids[0],
                user_id=reviewer,
                action="correct",
                category="animal",
                species="Panthera onca",
                count=2,
                comment="spots visible",
            )
        )
        db.add(Review(event_id=ids[2], user_id=reviewer, action="false_positive", category="blank", count=0))
    yield factory
    engine.dispose()


def _localise(package: Path, standard: Path) -> dict:
    """The exported descriptor with the standard's URLs pointed at the local copies, for validation."""
    descriptor = json.loads((package / "datapackage.json").read_text())
    for resource in descriptor["resources"]:
        name = resource["schema"].rsplit("/", 1)[1]
        assert resource["schema"] == f"https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/{name}"
        local = package / name
        shutil.copyfile(standard / name, local)
        resource["schema"] = name
    # The Camtrap DP profile is checked with jsonschema (its references are remote); frictionless gets
    # the generic tabular profile it ships, and the standard's own table schemas for the rows.
    assert (
        descriptor["profile"]
        == "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/camtrap-dp-profile.json"
    )
    descriptor["profile"] = "tabular-data-package"
    return descriptor


def test_camtrap_dp_validates_against_the_standard(sessions, standard: Path, tmp_path: Path) -> None:
    meta = ExportMetadata(latitude=-22.0, longitude=-60.0, contributor="Test ranger")
    package = tmp_path / "package"
    with sessions() as db:
        summary = camtrap_dp.write_package(db, package, meta)
    assert summary.deployments == 3 and summary.media == 12
    descriptor = _localise(package, standard)

    # 1. the descriptor against the Camtrap DP profile (JSON Schema). Its one outside reference, the
    # generic Data Package profile, is not shipped with the standard: frictionless checks that part.
    profile = json.loads((standard / "camtrap-dp-profile.json").read_text())
    remote = Resource.from_contents({"$schema": "http://json-schema.org/draft-04/schema#"})
    registry = Registry().with_resources(
        [
            ("https://specs.frictionlessdata.io/schemas/data-package.json", remote),
            ("http://json.schemastore.org/geojson.json", remote),
        ]
    )
    original = json.loads((package / "datapackage.json").read_text())
    jsonschema.Draft4Validator(profile, registry=registry).validate(original)

    # 2. the package and its three tables with frictionless, against the standard's table schemas
    # (types, required fields, enums, bounds, primary and foreign keys).
    (package / "local.json").write_text(json.dumps(descriptor))
    report = frictionless.validate(str(package / "local.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:20]

    rows = list(csv.DictReader((package / "observations.csv").open()))
    human = [r for r in rows if r["classificationMethod"] == "human"]
    machine_events = [
        r for r in rows if r["classificationMethod"] == "machine" and r["observationLevel"] == "event"
    ]
    boxes = [r for r in rows if r["observationLevel"] == "media"]
    assert len(machine_events) == 12 and len(human) == 2
    corrected = next(r for r in human if r["scientificName"] == "Panthera onca")
    assert corrected["count"] == "2" and corrected["classifiedBy"] == "rev"
    assert corrected["observationID"].endswith("-human")
    machine_twin = next(r for r in machine_events if r["eventID"] == corrected["eventID"])
    assert machine_twin["scientificName"] == "Puma concolor"  # the machine's answer is kept beside it
    assert any(
        r["observationType"] == "blank" and "false_positive" in r["observationComments"] for r in human
    )
    assert boxes and all(0 <= float(r["bboxX"]) <= 1 and 0 < float(r["bboxWidth"]) <= 1 for r in boxes)
    deployments = {r["deploymentID"]: r for r in csv.DictReader((package / "deployments.csv").open())}
    assert deployments["cam-03"]["latitude"] == "-22.0"
    assert deployments["cam-01"]["latitude"] == "-22.1"


def test_cameras_without_any_position_are_left_out_not_invalid(
    sessions, standard: Path, tmp_path: Path
) -> None:
    package = tmp_path / "package"
    with sessions() as db:
        summary = camtrap_dp.write_package(db, package, ExportMetadata())
    assert summary.cameras_without_position == ["cam-03"]
    assert summary.deployments == 2
    (package / "local.json").write_text(json.dumps(_localise(package, standard)))
    report = frictionless.validate(str(package / "local.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:20]

    # the validator does catch a box outside the image and an unknown deployment (it is not a rubber stamp)
    observations = package / "observations.csv"
    rows = list(csv.DictReader(observations.open()))
    first_box = next(r for r in rows if r["observationLevel"] == "media")
    first_box["bboxX"] = "1.5"
    rows[0]["deploymentID"] = "cam-99"
    with observations.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    report = frictionless.validate(str(package / "local.json"))
    kinds = {error[0] for error in report.flatten(["type"])}
    assert not report.valid and {"constraint-error", "foreign-key"} <= kinds, kinds


def test_megadetector_batch_output_1_6(sessions) -> None:
    with sessions() as db:
        result = megadetector.build(db, ExportScope(device="cam-01"))
    assert result["info"]["format_version"] == "1.6"
    assert validate_batch_output(result) == []  # the engine's validator of MegaDetector's published rules
    assert result["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    assert result["images"] and all(img["file"].startswith("seed/") for img in result["images"])
    classes = result.get("classification_categories", {})
    for image in result["images"]:
        assert isinstance(image["detections"], list)
        for det in image["detections"]:
            assert det["category"] in result["detection_categories"]
            assert 0 <= det["conf"] <= 1 and len(det["bbox"]) == 4
            x, y, w, h = det["bbox"]
            assert 0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 and 0 < h <= 1
            for class_id, conf in det.get("classifications", []):
                assert class_id in classes and 0 <= conf <= 1
    assert "Puma concolor" in classes.values() or "Canis lupus" in classes.values()
    json.dumps(result)  # serialisable as is


def test_events_csv_has_machine_and_human_columns(sessions) -> None:
    out = io.StringIO()
    with sessions() as db:
        rows = csv_export.write_events_csv(db, out)
    table = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows == len(table) == 12
    corrected = next(r for r in table if r["review"] == "correct")
    assert corrected["machine_species"] == "Puma concolor" and corrected["human_species"] == "Panthera onca"
    assert corrected["final_species"] == "Panthera onca" and corrected["reviewed_by"] == "rev"
    assert corrected["started_at"].endswith("-03:00")
