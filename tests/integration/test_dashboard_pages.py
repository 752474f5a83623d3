"""The dashboard's pages on a real station: feed filters and key paging, the live feed over SSE, the
event page with its boxes, review beside the machine's answer, languages, cameras, alerts, rules."""

from __future__ import annotations

import io
import json
import re
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from PIL import Image
from sqlalchemy import select

from tests.support.broker import MOSQUITTO, Broker
from tests.support.dashboard_web import PASSWORD, WebClient, add_heartbeat, add_user, seed
from tests.support.prerequisites import require_data
from tests.support.station import running_station
from yaguar.server.dashboard.models import Review
from yaguar.server.dashboard.species import common_name
from yaguar.server.station import Station
from yaguar.storage.models import Event

EVENTS = 60  # page size 25 -> three pages


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    data = require_data()
    if not shutil.which("mosquitto") and not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed")
    work = tmp_path_factory.mktemp("dash-pages")
    rules = {
        "enabled": False,
        "recipients": [{"name": "ana", "phone": "+595981123456"}],
        "rules": [{"name": "jaguar", "species": ["Panthera onca"], "severity": "high"}],
    }
    with (
        Broker(work / "broker") as broker,
        running_station(broker, work / "station", dashboard={"page_size": 25}, alerts=rules) as running,
    ):
        seed(running.session_factory, running.context.media_root, data, events=EVENTS)
        add_user(running.session_factory, "rev", "reviewer")
        yield running


@pytest.fixture
def client(station: Station) -> WebClient:
    web = WebClient(station.http_url)
    web.login("rev")
    return web


def _event_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-event-id="(\d+)"', html)]


def test_feed_pages_by_key_newest_first_without_gaps_or_repeats(station: Station, client: WebClient) -> None:
    seen: list[int] = []
    url = "/"
    for _ in range(5):
        page = client.get(url)
        assert page.status_code == 200
        seen += _event_ids(page.text)
        more = re.search(r'href="([^"]+)" id="next-page"', page.text)
        if not more:
            break
        url = more.group(1).replace("&amp;", "&")
        assert "before=" in url and "offset" not in url
    with station.session_factory() as db:
        expected = list(db.scalars(select(Event.id).order_by(Event.started_at.desc(), Event.id.desc())))
    assert seen == expected and len(seen) >= EVENTS


def test_feed_filters(station: Station, client: WebClient) -> None:
    with station.session_factory() as db:
        events = list(db.scalars(select(Event)))
    cases = {
        "camera=cam-02": {e.id for e in events if e.device_id == "cam-02"},
        "category=person": {e.id for e in events if e.category == "person"},
        "species=Puma+concolor": {e.id for e in events if e.species == "Puma concolor"},
        "from=2026-11-20&to=2026-11-20": {
            e.id for e in events if e.started_at.date().isoformat() == "2026-11-20"
        },
        "camera=cam-01&category=animal": {
            e.id for e in events if e.device_id == "cam-01" and e.category == "animal"
        },
    }
    for query, expected in cases.items():
        assert expected, query
        ids = set()
        url = f"/?{query}"
        while url:
            page = client.get(url)
            ids |= set(_event_ids(page.text))
            more = re.search(r'href="([^"]+)" id="next-page"', page.text)
            url = more.group(1).replace("&amp;", "&") if more else None
        assert ids == expected, query


def test_bad_filters_are_refused_with_a_reason(station: Station, client: WebClient) -> None:
    for query in ("category=dragon", "from=yesterday", "before=%%%", "review=maybe", "camera=" + "x" * 70):
        response = client.get(f"/?{query}")
        assert response.status_code == 400, query
        assert 'class="error-page"' in response.text, query
    # the reason, in the reader's language
    assert "categoría desconocida: dragon" in client.get("/?category=dragon").text
    assert client.get("/").status_code == 200
    refused = station.context.metrics.get_sample_value(
        "yaguar_dashboard_refused_total", {"reason": "bad_input"}
    )
    assert refused is not None and refused >= 5


def test_event_page_draws_each_box_where_the_detection_is(station: Station, client: WebClient) -> None:
    with station.session_factory() as db:
        event = db.scalars(select(Event).where(Event.species == "Puma concolor")).first()
        frame = event_frames(db, event.id)[0]
        det = frame.detections[0]
    page = client.get(f"/events/{event.id}")
    assert page.status_code == 200
    box = re.search(
        rf'data-detection-id="{det.id}"\s+style="left: ([\d.]+)%; top: ([\d.]+)%; '
        r'width: ([\d.]+)%; height: ([\d.]+)%"',
        page.text,
    )
    assert box, "no box for the detection"
    assert [float(v) for v in box.groups()] == pytest.approx(
        [det.x * 100, det.y * 100, det.w * 100, det.h * 100], abs=1e-3
    )
    assert f'src="/media/{frame.id}"' in page.text
    assert "Puma" in page.text and 'id="review-form"' in page.text


def test_a_frame_tagged_as_turned_or_mirrored_is_shown_under_its_boxes(
    station: Station, client: WebClient
) -> None:
    """Browsers turn a picture by all eight EXIF orientations, the analysis (as MegaDetector) by 3, 6
    and 8 only: a mirrored frame is shown as stored, a quarter-turned one in its shown aspect."""
    with station.session_factory() as db:
        event = db.scalars(select(Event).order_by(Event.id.desc())).first()
        frame = event_frames(db, event.id)[0]
    path = station.context.media_root / frame.path
    original = path.read_bytes()
    stage = re.compile(
        rf'data-media-id="{frame.id}">\s*<div class="stage" style="aspect-ratio: (\d+) / (\d+)">\s*'
        rf'<img src="/media/{frame.id}"[^>]*?( style="image-orientation: none")?>'
    )
    try:
        for orientation, aspect, as_stored in (
            (1, (frame.width, frame.height), False),
            (2, (frame.width, frame.height), True),
            (6, (frame.height, frame.width), False),
            (7, (frame.width, frame.height), True),
        ):
            tag = Image.Exif()
            tag[0x0112] = orientation
            with Image.open(io.BytesIO(original)) as image:
                image.save(path, "JPEG", quality=90, exif=tag.tobytes())
            found = stage.search(client.get(f"/events/{event.id}").text)
            assert found, orientation
            assert (int(found[1]), int(found[2])) == aspect and bool(found[3]) == as_stored, orientation
    finally:
        path.write_bytes(original)


def event_frames(db, event_id: int):
    from sqlalchemy.orm import selectinload

    from yaguar.storage.models import Media

    return list(
        db.scalars(select(Media).where(Media.event_id == event_id).options(selectinload(Media.detections)))
    )


def test_review_is_stored_beside_the_machine_answer(station: Station, client: WebClient) -> None:
    with station.session_factory() as db:
        event = db.scalars(select(Event).where(Event.species == "Odocoileus virginianus")).first()
        machine = (event.category, event.species, event.count, event.confidence)
    done = client.post(
        f"/events/{event.id}/review",
        {"action": "correct", "category": "animal", "species": "Panthera onca", "count": "2"},
    )
    assert done.status_code == 200 and "Panthera onca" in done.text
    bad = client.post(
        f"/events/{event.id}/review", {"action": "correct", "species": "<script>", "count": "2"}
    )
    assert bad.status_code == 400
    with station.session_factory() as db:
        again = db.get(Event, event.id)
        assert (again.category, again.species, again.count, again.confidence) == machine
        reviews = list(db.scalars(select(Review).where(Review.event_id == event.id)))
    assert len(reviews) == 1
    assert (reviews[0].species, reviews[0].count, reviews[0].action) == ("Panthera onca", 2, "correct")
    assert reviews[0].created_at.tzinfo is not None
    reviewed = client.get("/?review=reviewed")
    assert event.id in _event_ids(reviewed.text)
    assert event.id not in _event_ids(client.get("/?review=pending").text)
    # the feed finds it under the reviewed species too
    assert event.id in _event_ids(client.get("/?species=Panthera+onca").text)


def test_spanish_by_default_and_english_on_request(station: Station, client: WebClient) -> None:
    fresh = WebClient(station.http_url)
    login = fresh.get("/login")
    assert '<html lang="es">' in login.text and "Ingresar" in login.text
    page = client.get("/?species=Puma+concolor")
    assert '<html lang="es">' in page.text and "Eventos" in page.text
    assert f'{_common("Puma concolor", "es")}</span> <i class="sci">Puma concolor</i>' in page.text
    english = client.post("/lang", {"lang": "en", "next": "/?species=Odocoileus+virginianus"})
    assert '<html lang="en">' in english.text and ">Events" in english.text
    assert f"{_common('Odocoileus virginianus', 'en')}</span>" in english.text
    assert client.post("/lang", {"lang": "xx", "next": "/"}).status_code == 400
    back = client.post("/lang", {"lang": "es", "next": "/"})
    assert '<html lang="es">' in back.text and _common("Puma concolor", "es") in back.text
    assert _common("Odocoileus virginianus", "en") != _common("Odocoileus virginianus", "es")


def _common(scientific: str, lang: str) -> str:
    name = common_name(scientific, lang)
    assert name, f"no {lang} name for {scientific}"
    return name[:1].upper() + name[1:]


def test_cameras_page_shows_health(station: Station, client: WebClient) -> None:
    add_heartbeat(
        station.session_factory,
        "cam-01",
        {
            "battery_v": 12.31,
            "spool_depth": 7,
            "spool_bytes": 2048,
            "disk_free_bytes": 5 * 1024**3,
            "clock_synced": False,
        },
        drift_s=42.0,
    )
    page = client.get("/cameras")
    assert page.status_code == 200
    card = page.text.split('data-device-id="cam-01"')[1].split("</article>")[0]
    for text in ("12.31 V", "7 fotos", "5.0 GB", "+42", "sin sincronizar", "conectada", "/thumb"):
        assert text in card, text


def test_alerts_and_rules_pages(station: Station, client: WebClient) -> None:
    alerts = client.get("/alerts")
    assert alerts.status_code == 200 and 'id="no-alerts"' in alerts.text
    rules = client.get("/rules")
    assert rules.status_code == 200 and "jaguar" in rules.text and "Panthera onca" in rules.text
    assert "+595981123456" not in rules.text and "+59" in rules.text  # masked phone


def test_live_feed_streams_committed_event_ids(station: Station, client: WebClient) -> None:
    stream = client.http.get(station.http_url + "/feed/stream", stream=True, timeout=10)
    assert stream.status_code == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
    lines = stream.iter_lines(decode_unicode=True)
    assert next(lines) == ": connected"
    with station.session_factory() as db, db.begin():
        when = datetime(2026, 11, 25, 12, tzinfo=UTC)
        event = Event(
            device_id="cam-01",
            started_at=when,
            ended_at=when + timedelta(seconds=1),
            category="animal",
            species="Panthera onca",
            count=1,
            confidence=0.9,
        )
        db.add(event)
    # the pipeline calls the hook from its own thread after commit
    worker = threading.Thread(
        target=station.context.hooks.fire, args=(station.context.hooks.events_committed, [event.id])
    )
    worker.start()
    worker.join()
    got = []
    for line in lines:
        if line.startswith("data:"):
            got = json.loads(line[5:])
            break
    stream.close()
    assert got == [event.id]
    rows = client.get(f"/feed/rows?ids={event.id}")
    assert _event_ids(rows.text) == [event.id]
    assert _event_ids(client.get(f"/feed/rows?ids={event.id}&camera=cam-02").text) == []
    assert requests.get(station.http_url + f"/feed/rows?ids={event.id}", timeout=10).status_code == 401


def test_thumbnails_are_made_once_then_served_from_disk(station: Station, client: WebClient) -> None:
    metrics = station.context.metrics

    def made(outcome: str) -> float:
        return metrics.get_sample_value("yaguar_dashboard_thumbnails_total", {"outcome": outcome}) or 0.0

    before_made, before_cached = made("made"), made("cached")
    first = client.get("/media/3/thumb")
    second = client.get("/media/3/thumb")
    assert first.status_code == second.status_code == 200 and first.content == second.content
    assert first.content[:2] == b"\xff\xd8"
    assert made("made") - before_made <= 1 and made("cached") - before_cached >= 1
    thumbs = list((station.context.media_root / ".thumbs").rglob("3-*.jpg"))
    assert len(thumbs) == 1


def test_alerts_page_shows_each_delivery_state(station: Station, client: WebClient) -> None:
    from yaguar.alerts.models import Alert, Delivery

    with station.session_factory() as db, db.begin():
        event = db.scalars(select(Event).where(Event.category == "person")).first()
        when = datetime(2026, 11, 20, 11, tzinfo=UTC)
        alert = Alert(
            rule="people",
            severity="high",
            kind="first",
            group_key="people|cam-01|",
            state="sent",
            event_id=event.id,
            last_event_id=event.id,
            device_id=event.device_id,
            category="person",
            first_seen_at=when,
            last_seen_at=when,
            utc_offset_min=-180,
        )
        db.add(alert)
        db.flush()
        db.add_all(
            [
                Delivery(
                    alert_id=alert.id,
                    channel="twilio",
                    recipient="ana",
                    address="+595981123456",
                    body="x",
                    state="sent",
                    attempts=1,
                    provider_status="delivered",
                ),
                Delivery(
                    alert_id=alert.id,
                    channel="twilio",
                    recipient="juan",
                    address="+595981654321",
                    body="x",
                    state="failed",
                    attempts=3,
                    last_error="21610 unsubscribed recipient",
                ),
            ]
        )
    page = client.get("/alerts")
    assert page.status_code == 200 and 'id="no-alerts"' not in page.text
    row = page.text.split(f'data-alert-id="{alert.id}"')[1].split("</tr>")[0]
    assert "people" in row and f'href="/events/{event.id}"' in row
    assert "ana: <b>enviada</b> (delivered)" in row and "juan: <b>fallida</b>" in row
    assert "21610 unsubscribed recipient" in row and "+595981123456" not in page.text


def test_exports_download_from_the_dashboard(station: Station, client: WebClient) -> None:
    import csv
    import io
    import zipfile

    archive = client.get("/export/camtrap-dp.zip?camera=cam-01")
    assert archive.status_code == 200 and archive.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
        assert sorted(zf.namelist()) == [
            "datapackage.json",
            "deployments.csv",
            "media.csv",
            "observations.csv",
        ]
        deployments = list(csv.DictReader(io.StringIO(zf.read("deployments.csv").decode())))
        assert [d["deploymentID"] for d in deployments] == ["cam-01"]
        observations = list(csv.DictReader(io.StringIO(zf.read("observations.csv").decode())))
        assert {o["deploymentID"] for o in observations} == {"cam-01"}
    md = client.get("/export/megadetector.json?from=2026-11-20&to=2026-11-20")
    assert md.status_code == 200 and md.json()["info"]["format_version"] == "1.6"
    table = client.get("/export/events.csv")
    assert table.status_code == 200 and table.text.startswith("event_id,camera,")
    assert client.get("/export/events.csv?from=nonsense").status_code == 400


def test_admin_manages_users_and_a_disabled_user_is_logged_out(station: Station) -> None:
    add_user(station.session_factory, "boss", "admin")
    admin = WebClient(station.http_url)
    admin.login("boss")
    assert (
        admin.post("/users", {"username": "temp", "password": "short", "role": "viewer"}).status_code == 400
    )
    assert admin.post("/users", {"username": "temp", "password": "long enough 1", "role": "viewer"}).ok
    temp = WebClient(station.http_url)
    temp.login("temp", "long enough 1")
    assert temp.get("/").status_code == 200
    with station.session_factory() as db:
        from yaguar.server.dashboard.models import User

        temp_id = db.scalar(select(User.id).where(User.username == "temp"))
        boss_id = db.scalar(select(User.id).where(User.username == "boss"))
    assert admin.post(f"/users/{temp_id}", {"role": "viewer", "disabled": "1"}).ok
    assert temp.get("/", allow_redirects=False).status_code == 303  # the open session ends at once
    locked_out = admin.post(f"/users/{boss_id}", {"role": "viewer", "disabled": "0"})
    assert locked_out.status_code == 400 and "no puede bloquearse a sí mismo" in locked_out.text


def test_session_cookie_is_encrypted_httponly_and_samesite(station: Station) -> None:
    web = WebClient(station.http_url)
    response = web.get("/login")
    cookie = response.headers["Set-Cookie"]
    assert "yaguar_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    value = web.http.cookies["yaguar_session"]
    assert "csrf" not in value and "uid" not in value  # Fernet-encrypted, not readable JSON
    web.login("rev")
    assert web.post("/logout", {}).url.endswith("/login")
    assert web.get("/", allow_redirects=False).status_code == 303


def test_pages_forbid_framing_and_foreign_scripts(station: Station, client: WebClient) -> None:
    page = client.get("/")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"
    assert "http" not in " ".join(re.findall(r'(?:src|href)="([^"]+)"', page.text))  # nothing from outside


def test_login_never_redirects_off_site(station: Station) -> None:
    web = WebClient(station.http_url)
    web.get("/login")
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = web.post(
            "/login", {"username": "rev", "password": PASSWORD, "next": target}, allow_redirects=False
        )
        assert response.status_code == 303 and response.headers["Location"] == "/", target
        web.post("/logout", {})
        web.get("/login")


def test_thumbnails_of_committed_events_are_made_before_anyone_asks(
    station: Station, shared_data: Path
) -> None:
    import time

    from yaguar.storage.models import Media

    [event_id] = seed(
        station.session_factory,
        station.context.media_root,
        shared_data,
        events=1,
        start=datetime(2026, 11, 24, 8, tzinfo=UTC),
    )
    with station.session_factory() as db:
        media_id = db.scalar(select(Media.id).where(Media.event_id == event_id))
    thumb = station.context.media_root / ".thumbs" / str(media_id // 1000) / f"{media_id}-320.jpg"
    assert not thumb.exists()
    station.context.hooks.fire(station.context.hooks.events_committed, [event_id])
    deadline = time.monotonic() + 20
    while not thumb.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert thumb.exists() and thumb.read_bytes()[:2] == b"\xff\xd8"


def test_confirm_copies_the_machine_answer_and_blank_clears_it(station: Station, client: WebClient) -> None:
    with station.session_factory() as db:
        event = db.scalars(select(Event).where(Event.species == "Canis lupus")).first()
    assert client.post(f"/events/{event.id}/review", {"action": "confirm", "comment": "clear view"}).ok
    assert client.post(f"/events/{event.id}/review", {"action": "blank"}).ok
    assert client.post(f"/events/{event.id}/review", {"action": "delete"}).status_code == 400
    with station.session_factory() as db:
        reviews = list(db.scalars(select(Review).where(Review.event_id == event.id).order_by(Review.id)))
    assert [(r.action, r.category, r.species, r.count, r.comment) for r in reviews] == [
        ("confirm", event.category, event.species, event.count, "clear view"),
        ("blank", "blank", None, 0, None),
    ]
    page = client.get(f"/events/{event.id}")
    assert page.text.count('class="review-item"') == 2  # the history stays, newest first
    assert page.text.index("marcado vacío") < page.text.index("confirmado")
