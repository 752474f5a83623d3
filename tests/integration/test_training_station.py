"""A classifier trained on the station, switched in while the pipeline runs: its name is on the
detections, the event and the Camtrap DP export (``classifiedBy``); a worse model is refused; a choice
that cannot load leaves the old classifiers working."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.integration.test_pipeline_station import T0, Station, _context
from tests.support.config_files import write_station_config
from tests.support.polling import wait_until
from tests.support.training import train_on_shared
from yaguar.engine.training.trainer import TrainResult
from yaguar.server import cli as station_cli
from yaguar.server.classifier_choice import ClassifierChoice, record
from yaguar.server.dashboard_config import ExportMetadata
from yaguar.server.exports import camtrap_dp
from yaguar.server.pipeline import PipelineComponent, factory
from yaguar.storage.models import Detection, Event

JAGUAR = "AABP_13_20051007_1205.jpg"  # day frame: yolox_nano boxes the jaguar


@pytest.fixture(scope="module")
def trained(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train_on_shared(shared_data, tmp_path_factory.mktemp("train"))


def _config_file(tmp_path: Path, models_dir: Path, manifest_dir: Path) -> Path:
    pipeline = {
        "enabled": True,
        "model_dir": models_dir,
        "manifest_dir": manifest_dir,
        "classifiers": ["mobilenet_v2_imagenet_quant"],
    }
    return write_station_config(tmp_path, pipeline=pipeline)


def test_switch_without_restart_and_name_in_event_and_camtrap_dp(
    trained: TrainResult, tmp_path: Path, models_dir: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest_dir = trained.manifest.model_path(models_dir).parent
    ctx = _context(
        tmp_path, models_dir, manifest_dir=str(manifest_dir), classifiers=["mobilenet_v2_imagenet_quant"]
    )
    station = Station(ctx)
    component = factory(ctx)
    assert isinstance(component, PipelineComponent)
    component.start()
    try:
        assert component.analyser is not None
        assert [c.ident for c in component.analyser.classifiers] == ["mobilenet_v2_imagenet_quant@1.0"]
        config = _config_file(tmp_path, models_dir, manifest_dir)
        assert station_cli.main(["--config", str(config), "classifiers", "use", "especies_prueba"]) == 0
        out = capsys.readouterr().out
        assert "current / actual" in out and "especies_prueba@1" in out and "switched / cambiado" in out
        wait_until(lambda: [c.ident for c in component.analyser.classifiers] == ["especies_prueba@1"], 20)
        assert component.switch.failed is None
        frame = station.add_frame((images / "jaguar" / JAGUAR).read_bytes(), at=T0)
        rows = station.wait_processed([frame])
    finally:
        component.stop()
    with ctx.session_factory() as session:
        boxes = session.scalars(select(Detection).where(Detection.media_id == frame)).all()
        named = [b for b in boxes if b.species]
        assert named and {(b.species, b.classifier) for b in named} == {
            ("Panthera onca", "especies_prueba@1")
        }
        event = session.get(Event, rows[frame].event_id)
        assert event.species == "Panthera onca" and "especies_prueba@1" in (event.model or "")
        camtrap_dp.write_package(session, tmp_path / "package", ExportMetadata(latitude=4.6, longitude=-74.1))
    with open(tmp_path / "package" / "observations.csv", newline="") as handle:
        observations = list(csv.DictReader(handle))
    media_level = [o for o in observations if o["observationLevel"] == "media" and o["scientificName"]]
    assert {o["classifiedBy"] for o in media_level} == {"especies_prueba@1"}
    event_level = [o for o in observations if o["observationLevel"] == "event"]
    assert any("especies_prueba@1" in o["classifiedBy"] for o in event_level)


def test_a_worse_model_is_refused_side_by_side(
    trained: TrainResult, tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = trained.manifest.model_path(models_dir).parent
    manifest_dir = tmp_path / "manifests"
    manifest_dir.mkdir()
    text = (home / "especies_prueba.toml").read_text()
    (manifest_dir / "especies_prueba.toml").write_text(text)
    (manifest_dir / "especies_prueba.onnx").symlink_to(home / "especies_prueba.onnx")
    accuracy = trained.trained.validation.accuracy
    worse = text.replace('name = "especies_prueba"', 'name = "peor"').replace(
        f"validation_accuracy = {json.dumps(round(accuracy, 4))}", "validation_accuracy = 0.5"
    )
    assert "validation_accuracy = 0.5" in worse
    (manifest_dir / "peor.toml").write_text(worse)
    config = _config_file(tmp_path, models_dir, manifest_dir)
    use = ["--config", str(config), "classifiers", "use", "especies_prueba"]
    assert station_cli.main([*use, "--with", "mobilenet_v2_inat_bird_quant"]) == 0
    capsys.readouterr()
    assert station_cli.main(["--config", str(config), "classifiers", "use", "peor"]) == 1
    out = capsys.readouterr().out
    assert "not switched / no se cambió: peor@1 scores 50.0%, worse than especies_prueba@1's" in out
    header, model_row, _, accuracy_row = out.splitlines()[:4]
    assert "current / actual" in header and "new / nuevo" in header
    assert "especies_prueba@1" in model_row and "peor@1" in model_row
    assert f"{accuracy:.1%}" in accuracy_row and "50.0%" in accuracy_row
    assert station_cli.main(["--config", str(config), "classifiers", "show"]) == 0
    shown = capsys.readouterr().out
    assert "in use / en uso: especies_prueba, mobilenet_v2_inat_bird_quant" in shown
    assert "*especies_prueba@1" in shown and " peor@1" in shown


def test_a_choice_that_cannot_load_keeps_the_old_classifiers(tmp_path: Path, models_dir: Path) -> None:
    ctx = _context(tmp_path, models_dir, classifiers=["mobilenet_v2_imagenet_quant"])
    component = factory(ctx)
    assert isinstance(component, PipelineComponent)
    component.start()
    try:
        with ctx.session_factory.begin() as session:
            record(session, ["no_such_model"], "test", "a model that is not there")
        assert component.switch is not None
        wait_until(lambda: component.switch.failed is not None, 20, "the failed switch")
        assert "no_such_model" in component.switch.failed
        assert [c.ident for c in component.analyser.classifiers] == ["mobilenet_v2_imagenet_quant@1.0"]
        errors = ctx.metrics.get_sample_value("yaguar_pipeline_errors_total", {"kind": "classifier_switch"})
        assert errors == 1
    finally:
        component.stop()
    with ctx.session_factory() as session:
        assert session.scalars(select(ClassifierChoice)).one().chosen_by == "test"
