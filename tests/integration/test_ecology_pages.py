"""The ecology pages on a real station: an admin sets a camera's position and deployments (bad ones
refused with their reason, in the reader's language), the map shows the camera where it stands, every
analysis page answers with its chart, table and CSV, times are the camera's, and one box of a mixed
group is corrected on its own."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.support.broker import Broker
from tests.support.dashboard_web import WebClient, add_user, seed
from tests.support.prerequisites import station_data
from tests.support.station import running_station
from yaguar.server.dashboard.box_review import BoxReview
from yaguar.server.deployments.models import Deployment
from yaguar.server.station import Station
from yaguar.storage.models import Detection, Media

PERIOD = "from=2026-11-01&to=2026-11-30"


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    data = station_data()
    work = tmp_path_factory.mktemp("ecology-pages")
    with Broker(work / "broker") as broker, running_station(broker, work / "station") as running:
        seed(running.session_factory, running.context.media_root, data, events=20)
        add_user(running.session_factory, "boss", "admin")
        add_user(running.session_factory, "rev", "reviewer")
        yield running


@pytest.fixture(scope="module")
def admin(station: Station) -> WebClient:
    web = WebClient(station.http_url)
    web.login("boss")
    web.post("/lang", {"lang": "en", "next": "/"})
    return web


def test_admin_sets_a_position_and_the_map_shows_it(station: Station, admin: WebClient) -> None:
    page = admin.get("/cameras/cam-01")
    assert page.status_code == 200 and 'id="position-form"' in page.text
    assert "(-03:00)" in page.text, "times are the camera's local time with its offset"
    saved = admin.post(
        "/cameras/cam-01/position", {"latitude": "-22.25", "longitude": "-60.75", "at": "2026-11-01T06:00"}
    )
    assert saved.status_code == 200 and saved.url.endswith("/cameras/cam-01")
    assert "-22.250000, -60.750000" in saved.text
    with station.session_factory() as db:
        dep = db.scalars(select(Deployment).where(Deployment.device_id == "cam-01")).one()
    assert dep.start.isoformat() == "2026-11-01T09:00:00+00:00", "06:00 at the camera (UTC-3)"
    themap = admin.get("/map")
    assert themap.status_code == 200
    assert re.search(r'<a href="/cameras/cam-01" class="cam \w+" id="map-cam-cam-01"', themap.text)
    assert 'id="map-scale"' in themap.text


def test_bad_deployments_are_refused_with_their_reason(station: Station, admin: WebClient) -> None:
    admin.post(
        "/cameras/cam-02/deployments",
        {"latitude": "-22.3", "longitude": "-60.8", "start": "2026-11-01T00:00"},
    )
    cases = [
        (
            {"latitude": "95", "longitude": "-60.8", "start": "2026-11-01T00:00"},
            "Latitude 95.0 is out of range",
        ),
        (
            {"latitude": "-22", "longitude": "-200", "start": "2026-11-01T00:00"},
            "Longitude -200.0 is out of range",
        ),
        (
            {"latitude": "-22", "longitude": "-60", "start": "2026-10-01T00:00", "end": "2026-09-01T00:00"},
            "The end of a deployment must come after its start.",
        ),
        (
            {"latitude": "-22", "longitude": "-60", "start": "2026-11-15T00:00"},
            "This deployment overlaps deployment",
        ),
        (
            {"latitude": "south", "longitude": "-60", "start": "2026-11-15T00:00"},
            "latitude must be a number.",
        ),
    ]
    for form, reason in cases:
        refused = admin.post("/cameras/cam-02/deployments", form)
        assert refused.status_code == 400, form
        assert reason in refused.text, (reason, refused.text[-800:])
    with station.session_factory() as db:
        assert len(db.scalars(select(Deployment).where(Deployment.device_id == "cam-02")).all()) == 1
    # in Spanish too
    admin.post("/lang", {"lang": "es", "next": "/"})
    try:
        refused = admin.post("/cameras/cam-02/deployments", cases[0][0])
        assert "La latitud 95.0 está fuera de rango" in refused.text
    finally:
        admin.post("/lang", {"lang": "en", "next": "/"})
    # a viewer-level account cannot change positions
    rev = WebClient(station.http_url)
    rev.login("rev")
    assert rev.post("/cameras/cam-02/position", {"latitude": "1", "longitude": "1"}).status_code == 403


@pytest.mark.parametrize("page", ["species", "abundance", "activity", "history", "uptime"])
def test_analysis_pages_answer_with_their_numbers_and_csv(admin: WebClient, page: str) -> None:
    html = admin.get(f"/analysis/{page}?{PERIOD}")
    assert html.status_code == 200, html.text[-500:]
    assert 'id="analysis-filters"' in html.text and 'id="csv-download"' in html.text
    if page in ("abundance", "activity", "history"):
        assert re.search(r'<figure class="chart" id="analysis-chart"><svg role="img"', html.text), page
    download = admin.get(f"/analysis/{page}?{PERIOD}&format=csv")
    assert download.status_code == 200 and download.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(download.text)))
    assert len(rows) >= 2 and rows[0][0] in ("camera", "hour")


def test_analysis_of_a_period_without_effort_says_no_data(admin: WebClient) -> None:
    html = admin.get("/analysis/abundance?from=2025-01-01&to=2025-01-31")
    assert html.status_code == 200 and 'id="no-data"' in html.text
    assert admin.get("/analysis/abundance?from=2026-12-01&to=2026-01-01").status_code == 400


def test_one_box_of_a_mixed_group_is_corrected_on_its_own(station: Station) -> None:
    with station.session_factory() as db:
        media = db.scalars(select(Media).join(Detection).where(Detection.species.is_not(None))).first()
        det = media.detections[0]
        event_id = media.event_id
    rev = WebClient(station.http_url)
    rev.login("rev")
    done = rev.post(f"/boxes/{det.id}/review", {"category": "animal", "species": "Pecari tajacu"})
    assert done.status_code == 200 and f"/events/{event_id}" in done.url
    assert 'class="box-reviewed-species"' in done.text
    with station.session_factory() as db:
        reviews = db.scalars(select(BoxReview)).all()
        assert [(r.detection_id, r.species) for r in reviews] == [(det.id, "Pecari tajacu")]
        assert db.get(Detection, det.id).species != "Pecari tajacu", "the machine's answer is kept"
    bad = rev.post(f"/boxes/{det.id}/review", {"category": "animal", "species": ""})
    assert bad.status_code == 400


def test_help_page_links_the_field_guides_in_both_languages(admin: WebClient) -> None:
    page = admin.get("/help")
    assert (
        page.status_code == 200
        and 'href="/help/ranger"' in page.text
        and 'href="/help/installer"' in page.text
    )
    ranger = admin.get("/help/ranger")
    assert "Ranger's guide" in ranger.text and "OK 3F" in ranger.text
    assert "Installer's guide" in admin.get("/help/installer").text
    admin.post("/lang", {"lang": "es", "next": "/"})
    try:
        assert "Guía del guardaparque" in admin.get("/help/ranger").text
        assert "Guía del instalador" in admin.get("/help/installer").text
    finally:
        admin.post("/lang", {"lang": "en", "next": "/"})
    assert admin.get("/help/nothing").status_code == 404
