"""Who may see and do what on the dashboard, against a real station (real Mosquitto, SQLite, HTTP):
log-in required everywhere, 401 on the API without a token, roles, CSRF on every form, safe media ids."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from tests.support.broker import MOSQUITTO, Broker
from tests.support.dashboard_web import WebClient, add_user, seed
from tests.support.prerequisites import require_data
from tests.support.rows import media_row
from tests.support.station import running_station
from yaguar.server.dashboard.models import Review, User
from yaguar.server.station import Station
from yaguar.storage.models import Media

OPEN_PATHS = ("/login", "/healthz", "/metrics")
# Twilio's callbacks: no session, they carry Twilio's signature, checked by the alerts component.
SIGNED_WEBHOOKS = ("/alerts/twilio/",)


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    data = require_data()
    if not shutil.which("mosquitto") and not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed")
    work = tmp_path_factory.mktemp("dash-access")
    # alerts on, so their routes (the API's and the short links) are among those checked
    alerts = {
        "enabled": True,
        "rules": [{"name": "people", "categories": ["person"]}],
        "recipients": [{"name": "ana", "phone": "+573001234567"}],
    }
    with (
        Broker(work / "broker") as broker,
        running_station(broker, work / "station", alerts=alerts) as running,
    ):
        seed(running.session_factory, running.context.media_root, data, events=3)
        add_user(running.session_factory, "admin1", "admin")
        add_user(running.session_factory, "rev1", "reviewer")
        add_user(running.session_factory, "view1", "viewer")
        yield running


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _routes(station: Station) -> list[tuple[str, str]]:
    """Every (method, path) the station's app serves, read from its router (pages, API, static)."""
    app = station.app()
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if path and route.method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            found.append((route.method, _concrete(path)))
    return sorted(set(found))


def test_every_page_without_login_gets_the_login_page_and_every_api_route_401(station: Station) -> None:
    routes = _routes(station)
    pages = [(m, p) for m, p in routes if not p.startswith(("/api/", "/static")) and p not in OPEN_PATHS]
    api = [(m, p) for m, p in routes if p.startswith("/api/")]
    assert ("GET", "/") in pages and ("GET", "/events/1") in pages and ("POST", "/users") in pages
    assert api, "the station serves no /api/v1 route"
    for method, path in pages:
        if method == "POST" and path in ("/logout", "/lang"):
            continue  # open to anyone (they need only the CSRF token), checked below
        if path.startswith(SIGNED_WEBHOOKS):
            continue
        response = requests.request(method, station.http_url + path, timeout=10, allow_redirects=False)
        if path in ("/feed/rows", "/feed/stream"):
            assert response.status_code == 401, (method, path)  # script routes: no redirect
            continue
        assert response.status_code in (302, 303), (method, path, response.status_code)
        page = requests.request(method, station.http_url + path, timeout=10)
        assert page.url.startswith(station.http_url + "/login?next="), (method, path, page.url)
        assert 'id="login-form"' in page.text, (method, path)
    for method, path in api:
        response = requests.request(method, station.http_url + path, timeout=10, allow_redirects=False)
        assert response.status_code == 401, (method, path, response.status_code)


def test_a_logged_in_session_reads_the_api_but_cannot_write_through_it(station: Station) -> None:
    client = WebClient(station.http_url)
    client.login("view1")
    api_gets = [p for m, p in _routes(station) if m == "GET" and p.startswith("/api/v1/") and "{" not in p]
    assert api_gets
    for path in api_gets:  # let in: an answer (200, or 404 for an id that does not exist), never 401
        assert client.get(path).status_code in (200, 404), path
    assert client.get("/api/v1/devices").status_code == 200
    writes = [(m, p) for m, p in _routes(station) if m != "GET" and p.startswith("/api/v1/")]
    for method, path in writes:
        response = client.http.request(method, station.http_url + path, timeout=10)
        assert response.status_code == 401, (method, path)


def test_wrong_password_is_refused_and_counted(station: Station) -> None:
    client = WebClient(station.http_url)
    client.get("/login")
    response = client.post("/login", {"username": "rev1", "password": "not the password", "next": "/"})
    assert response.status_code == 401 and 'id="login-error"' in response.text
    assert client.get("/", allow_redirects=False).status_code == 303
    failed = station.context.metrics.get_sample_value("yaguar_dashboard_logins_total", {"outcome": "failed"})
    assert failed is not None and failed >= 1


def test_reviewer_cannot_reach_admin_actions(station: Station) -> None:
    client = WebClient(station.http_url)
    client.login("rev1")
    assert client.get("/users").status_code == 403
    before = _count(station, User)
    refused = client.post("/users", {"username": "mallory", "password": "x" * 12, "role": "admin"})
    assert refused.status_code == 403
    me = _user_id(station, "rev1")
    assert client.post(f"/users/{me}", {"role": "admin", "disabled": "0"}).status_code == 403
    assert _count(station, User) == before
    with station.session_factory() as db:
        assert db.get(User, me).role == "reviewer"
    # a viewer cannot review either
    viewer = WebClient(station.http_url)
    viewer.login("view1")
    assert viewer.post("/events/1/review", {"action": "blank"}).status_code == 403
    # the admin can
    admin = WebClient(station.http_url)
    admin.login("admin1")
    added = admin.post("/users", {"username": "ranger2", "password": "long enough pw", "role": "viewer"})
    assert added.status_code == 200 and "ranger2" in added.text
    assert _count(station, User) == before + 1


def test_a_form_without_its_csrf_token_is_refused(station: Station) -> None:
    client = WebClient(station.http_url)
    client.login("admin1")
    reviews = _count(station, Review)
    for path, data in [
        ("/events/1/review", {"action": "blank"}),
        ("/users", {"username": "eve", "password": "x" * 12, "role": "admin"}),
        ("/lang", {"lang": "en", "next": "/"}),
        ("/logout", {}),
    ]:
        missing = client.post(path, data, csrf=False)
        assert missing.status_code == 403, path
        forged = client.post(path, {**data, "csrf_token": "forged"}, csrf=False)
        assert forged.status_code == 403, path
    assert _count(station, Review) == reviews
    assert client.get("/").status_code == 200  # still logged in: the logout without token did nothing
    # log-in form too
    fresh = WebClient(station.http_url)
    assert (
        fresh.post(
            "/login", {"username": "admin1", "password": "correct horse battery"}, csrf=False
        ).status_code
        == 403
    )
    refused = station.context.metrics.get_sample_value("yaguar_dashboard_refused_total", {"reason": "csrf"})
    assert refused is not None and refused >= 9


def test_media_not_in_database_or_leaving_the_media_root_is_404(station: Station, tmp_path: Path) -> None:
    client = WebClient(station.http_url)
    client.login("view1")
    assert client.get("/media/1").status_code == 200
    assert client.get("/media/1/thumb").status_code == 200
    assert client.get("/media/999999").status_code == 404
    assert client.get("/media/999999/thumb").status_code == 404
    for raw in ("/media/..%2F..%2Fetc%2Fpasswd", "/media/../../etc/passwd", "/media/-1", "/media/1%00"):
        assert client.http.get(station.http_url + raw, timeout=10).status_code == 404, raw
    outside = tmp_path / "secret.jpg"
    shutil.copyfile(station.context.media_root / "seed" / "IMAG0107_deer.JPG", outside)
    link = station.context.media_root / "seed" / "link.jpg"
    os.symlink(outside, link)
    with station.session_factory() as db, db.begin():
        base = {
            "device_id": "cam-01",
            "capture_id": "x",
            "agent_event_id": "x",
            "burst_index": 0,
            "burst_size": 1,
            "trigger": "pir",
            "captured_at": _now(),
            "utc_offset_min": 0,
            "sha256": "0" * 64,
            "size": 1,
            "width": 1,
            "height": 1,
        }
        escapes = [
            Media(seq=90001 + i, path=path, **base)
            for i, path in enumerate(["../../../../etc/passwd", str(outside), "seed/link.jpg", "."])
        ]
        db.add_all(escapes)
        db.flush()
        ids = [m.id for m in escapes]
    for media_id in ids:
        assert client.get(f"/media/{media_id}").status_code == 404, media_id
        assert client.get(f"/media/{media_id}/thumb").status_code == 404, media_id


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _count(station: Station, model: type) -> int:
    with station.session_factory() as db:
        return db.scalar(select(func.count()).select_from(model))


def _user_id(station: Station, name: str) -> int:
    with station.session_factory() as db:
        return db.scalar(select(User.id).where(User.username == name))


def test_an_unreadable_frame_has_no_thumbnail_and_is_counted(station: Station, shared_data: Path) -> None:
    client = WebClient(station.http_url)
    client.login("view1")
    broken = station.context.media_root / "seed" / "error_img.JPG"
    shutil.copyfile(shared_data / "images" / "camera-trap" / "error_img.JPG", broken)  # a 0-byte file
    with station.session_factory() as db, db.begin():
        media = media_row(
            "cam-01",
            91001,
            _now(),
            "seed/error_img.JPG",
            capture_id="b",
            agent_event_id="b",
            utc_offset_min=0,
            width=1,
            height=1,
        )
        db.add(media)
    assert client.get(f"/media/{media.id}/thumb").status_code == 404
    unreadable = station.context.metrics.get_sample_value(
        "yaguar_dashboard_thumbnails_total", {"outcome": "unreadable"}
    )
    assert unreadable == 1
    assert client.get("/").status_code == 200  # the dashboard goes on
