"""The data API on a real station: events and detections paged by key, species summaries and analysis
numbers, deployments changed by an admin token only (bad ones refused with their reason), exports for
reviewer tokens, and an OpenAPI document generated from the handlers."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import select

from tests.support.broker import Broker
from tests.support.dashboard_web import seed
from tests.support.prerequisites import station_data
from tests.support.station import API_TOKEN, station_config
from yaguar.server.api.schemas import DeviceList, MediaPage
from yaguar.server.station import Station
from yaguar.storage.models import Detection, Event

VIEWER, REVIEWER = "viewer-token-1", "reviewer-token-1"


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    data = station_data()
    work = tmp_path_factory.mktemp("ecology-api")
    tokens = [API_TOKEN, f"viewer:{VIEWER}", f"reviewer:{REVIEWER}"]
    with Broker(work / "broker") as broker:
        # running_station's own `http` argument is whether to serve; the section goes in by name here
        # alerts on (logged only), so their API routes are in the OpenAPI document checked below
        alerts = {"enabled": True, "rules": [{"name": "people", "categories": ["person"]}]}
        config = station_config(broker, work / "station", http={"api_tokens": tokens}, alerts=alerts)
        running = Station(config).start()
        try:
            seed(running.session_factory, running.context.media_root, data, events=20)
            yield running
        finally:
            running.stop()


def _get(station: Station, path: str, token: str = VIEWER, **params: object) -> requests.Response:
    return requests.get(
        station.http_url + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=20
    )


def _send(
    station: Station, method: str, path: str, body: object, token: str = API_TOKEN
) -> requests.Response:
    return requests.request(
        method, station.http_url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=20
    )


def test_events_are_paged_by_key_without_gaps_or_repeats(station: Station) -> None:
    seen: list[int] = []
    before = None
    while True:
        response = _get(station, "/api/v1/events", limit=7, **({"before_id": before} if before else {}))
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [e["id"] for e in page["items"]]
        before = page["next_before_id"]
        if before is None:
            break
    with station.session_factory() as db:
        assert seen == list(db.scalars(select(Event.id).order_by(Event.id.desc())))
    first = _get(station, "/api/v1/events", limit=1).json()["items"][0]
    assert first["local_start"].endswith("-03:00") and first["url"] == f"/events/{first['id']}"
    pumas = _get(station, "/api/v1/events", species="Puma concolor").json()["items"]
    assert pumas and {e["species"] for e in pumas} == {"Puma concolor"}
    bad = _get(station, "/api/v1/events", since="2026-11-20T10:00:00")
    assert bad.status_code == 400 and "UTC offset" in bad.json()["detail"]
    assert _get(station, "/api/v1/events", limit="many").status_code == 400
    assert requests.get(station.http_url + "/api/v1/events", timeout=10).status_code == 401


def test_detections_with_their_boxes(station: Station) -> None:
    page = _get(station, "/api/v1/detections", limit=500).json()
    with station.session_factory() as db:
        count = len(db.scalars(select(Detection.id)).all())
    assert len(page["items"]) == count and page["next_before_id"] is None
    box = page["items"][0]
    assert (
        len(box["bbox"]) == 4
        and all(0 <= v <= 1 for v in box["bbox"])
        and box["device_id"].startswith("cam-")
    )


def test_species_summary_and_analysis_numbers(station: Station) -> None:
    summary = _get(station, "/api/v1/species", start="2026-11-01", end="2026-11-30").json()
    with station.session_factory() as db:
        pumas = db.scalars(select(Event).where(Event.species == "Puma concolor")).all()
    puma = next(s for s in summary["items"] if s["species"] == "Puma concolor")
    assert puma["detections"] == len(pumas) and sorted(puma["cameras"]) == sorted(
        {e.device_id for e in pumas}
    )
    rai = _get(station, "/api/v1/analysis/abundance", start="2026-11-01", end="2026-11-30").json()
    assert rai["columns"] == ["camera", "species", "detections", "camera_days", "rai"]
    assert rai["rows"] and all(r["rai"] is None for r in rai["rows"]), "no deployment: no effort, no data"
    activity = _get(station, "/api/v1/analysis/activity", start="2026-11-01", end="2026-11-30").json()
    assert len(activity["rows"]) == 24 and activity["species"]
    bad = _get(station, "/api/v1/analysis/abundance", start="2026-11-30", end="2026-11-01")
    assert bad.status_code == 400 and bad.json()["detail"] == "The period ends before it starts."
    assert _get(station, "/api/v1/analysis/nonsense").status_code == 404


def test_deployments_need_an_admin_token_and_sound_values(station: Station) -> None:
    good = {"latitude": -22.2, "longitude": -60.6, "start": "2026-11-01T00:00:00-03:00", "site": "Norte"}
    assert _send(station, "POST", "/api/v1/devices/cam-01/deployments", good, token=VIEWER).status_code == 403
    refused = _send(station, "POST", "/api/v1/devices/cam-01/deployments", {**good, "latitude": 123})
    assert refused.status_code == 400 and refused.json()["detail"].startswith(
        "Latitude 123.0 is out of range"
    )
    backwards = {**good, "end": "2026-10-01T00:00:00-03:00"}
    assert (
        "must come after its start"
        in _send(station, "POST", "/api/v1/devices/cam-01/deployments", backwards).text
    )
    created = _send(station, "POST", "/api/v1/devices/cam-01/deployments", good)
    assert created.status_code == 201, created.text
    dep = created.json()
    overlap = _send(
        station, "POST", "/api/v1/devices/cam-01/deployments", {**good, "start": "2026-11-15T00:00:00Z"}
    )
    assert overlap.status_code == 400 and "overlaps deployment" in overlap.json()["detail"]
    changed = _send(station, "PUT", f"/api/v1/deployments/{dep['id']}", {**good, "habitat": "bosque"})
    assert changed.status_code == 200 and changed.json()["habitat"] == "bosque"
    listed = _get(station, "/api/v1/devices/cam-01/deployments").json()["items"]
    assert [(d["id"], d["site"], d["habitat"]) for d in listed] == [(dep["id"], "Norte", "bosque")]
    # with effort, the abundance index is a number
    rai = _get(
        station, "/api/v1/analysis/abundance", start="2026-11-01", end="2026-11-30", camera="cam-01"
    ).json()
    assert any(r["rai"] is not None and r["rai"] > 0 for r in rai["rows"])


def test_exports_need_a_reviewer_token(station: Station) -> None:
    assert _get(station, "/api/v1/exports/events.csv").status_code == 403
    zipped = _get(station, "/api/v1/exports/camtrap-dp.zip", token=REVIEWER)
    assert zipped.status_code == 200 and zipped.headers["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
    assert sorted(names) == ["datapackage.json", "deployments.csv", "media.csv", "observations.csv"]
    csv = _get(station, "/api/v1/exports/events.csv", token=REVIEWER, device="cam-02")
    assert csv.status_code == 200 and csv.text.count("\n") > 1
    assert _get(station, "/api/v1/exports/other.txt", token=REVIEWER).status_code == 404


def test_openapi_is_generated_from_the_handlers(station: Station) -> None:
    spec = _get(station, "/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.") and spec["info"]["title"] == "Yaguar station API"
    events = spec["paths"]["/api/v1/events"]["get"]
    assert {p["name"] for p in events["parameters"]} >= {
        "device",
        "species",
        "since",
        "until",
        "limit",
        "before_id",
    }
    assert "EventPage" in str(events["responses"]["200"]) and "newest first" in events["description"]
    assert set(spec["paths"]) >= {
        "/api/v1/detections",
        "/api/v1/species",
        "/api/v1/analysis/{name}",
        "/api/v1/devices/{device_id}/deployments",
        "/api/v1/deployments/{deployment_id}",
        "/api/v1/exports/{fmt}",
    }


def test_every_api_route_is_in_the_openapi_document(station: Station) -> None:
    """Generated from the handlers, old and new: every route under /api/v1 the station serves (the
    alerts' too), with its method; and a real answer fits the model the document gives for it."""
    spec = _get(station, "/api/v1/openapi.json").json()
    served = set()
    for route in station.app().router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/api/v1/") and route.method != "HEAD":
            served.add((route.method.lower(), path))
    documented = {(method, path) for path, methods in spec["paths"].items() for method in methods}
    assert ("get", "/api/v1/alerts") in served and ("put", "/api/v1/devices/{device_id}/config") in served
    assert served - documented == set(), "routes missing from the OpenAPI document"
    media = spec["paths"]["/api/v1/media"]["get"]
    assert "newest first" in media["description"] and "MediaPage" in str(media["responses"]["200"])
    MediaPage.model_validate(_get(station, "/api/v1/media", limit=2).json())
    DeviceList.model_validate(_get(station, "/api/v1/devices").json())


def test_old_handlers_refuse_bad_parameters_in_the_api_s_json_shape(station: Station) -> None:
    for params in ({"limit": "many"}, {"limit": 0}, {"before_id": 2**70}, {"since": "2026-11-01T00:00:00"}):
        refused = _get(station, "/api/v1/media", **params)
        assert refused.status_code == 400, params
        assert refused.json()["error"] == "bad_request" and refused.json()["detail"], params
    bad_command = _send(station, "POST", "/api/v1/devices/cam-01/command", {"id": "c1", "command": "explode"})
    assert bad_command.status_code == 400 and "command" in bad_command.json()["detail"]
    assert _get(station, "/api/v1/media/..%2Fetc/image").status_code == 404
