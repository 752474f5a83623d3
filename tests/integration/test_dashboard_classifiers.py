"""The dashboard's classifier page (admins): trained models side by side, switching (a worse one is
refused), and retraining from the reviews in the background with its outcome on the page."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.support.broker import MOSQUITTO, Broker
from tests.support.dashboard_web import WebClient, add_user
from tests.support.station import running_station
from tests.support.training import train_on_shared


def test_admin_switches_and_retrains_from_the_dashboard(shared_data: Path, tmp_path: Path) -> None:
    if not shutil.which("mosquitto") and not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed")
    trained = train_on_shared(shared_data, tmp_path / "train")
    home = trained.manifest.model_path(shared_data).parent
    text = (home / "especies_prueba.toml").read_text()
    accuracy = trained.trained.validation.accuracy
    worse = text.replace('name = "especies_prueba"', 'name = "peor"')
    worse = worse.replace(f"validation_accuracy = {round(accuracy, 4)}", "validation_accuracy = 0.5")
    (home / "peor.toml").write_text(worse)
    (home / "peor.onnx").symlink_to(home / "especies_prueba.onnx")
    pipeline = {"model_dir": str(shared_data / "models"), "manifest_dir": str(home)}
    with (
        Broker(tmp_path / "broker") as broker,
        running_station(broker, tmp_path / "st", pipeline=pipeline) as st,
    ):
        add_user(st.session_factory, "jefa", "admin")
        add_user(st.session_factory, "rev", "reviewer")
        reviewer = WebClient(st.http_url)
        reviewer.login("rev")
        assert reviewer.get("/classifiers").status_code == 403
        web = WebClient(st.http_url)
        web.login("jefa")
        page = web.get("/classifiers").text
        assert "Clasificadores de especies" in page and 'data-model="especies_prueba"' in page
        assert f"{accuracy * 100:.1f}%" in page and "50.0%" in page

        used = web.post("/classifiers/use", {"name": "especies_prueba"})
        assert used.status_code == 200 and "Cambiado" in used.text
        assert '<strong id="in-use">especies_prueba</strong>' in used.text
        refused = web.post("/classifiers/use", {"name": "peor"})
        assert refused.status_code == 409 and "No se cambió" in refused.text and "50.0%" in refused.text
        assert web.post("/classifiers/use", {"name": "nada"}).status_code == 400

        assert web.post("/classifiers/retrain", {"name": "Mal Nombre"}).status_code == 400
        started = web.post("/classifiers/retrain", {"name": "revisado"})
        assert started.status_code == 200  # followed the redirect back to the page
        deadline = time.monotonic() + 60
        while "Reentrenando" in (page := web.get("/classifiers").text) and time.monotonic() < deadline:
            time.sleep(0.3)
        # no reviews yet: the run stops with its reason, shown on the page, and the station goes on
        assert "El reentrenamiento falló." in page and "at least two species" in page
        metrics = web.get("/metrics").text
        assert 'yaguar_dashboard_retrains_total{outcome="failed"} 1.0' in metrics
        assert '<strong id="in-use">especies_prueba</strong>' in page
