"""Log-in throttling against a real station, as an attacker on the station's WiFi would try it: 50 wrong
passwords for `admin` from one address. The back-off grows (doubling, to its ceiling), the page and the
Retry-After header say how long to wait, the right password works once the wait is over, other users
on other addresses are not locked out, an admin can lift the wait, and it is all logged and counted.
The counts are in the database: a restart keeps them, and workers on one PostgreSQL share them.
Also: `/metrics` limited to loopback or to a token by config."""

from __future__ import annotations

import http.client
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from sqlalchemy import Engine

from tests.support.broker import Broker
from tests.support.dashboard_web import CSRF, PASSWORD, WebClient, add_user
from tests.support.postgres import postgres_cluster
from tests.support.station import API_TOKEN, running_station, station_config
from yaguar.server.dashboard.throttle import LoginThrottle
from yaguar.server.schema import upgrade
from yaguar.server.station import Station
from yaguar.storage import make_db_engine, make_session_factory

BACKOFF = {"login_free_failures": 3, "login_backoff_s": 0.2, "login_backoff_max_s": 1.6}


def login_from(base_url: str, source: str, username: str, password: str) -> int:
    """Log in from another loopback address (127.0.0.2: another machine, as the station sees it)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(
        parts.hostname or "", parts.port, timeout=20, source_address=(source, 0)
    )
    conn.request("GET", "/login")
    page = conn.getresponse()
    cookie = (page.getheader("Set-Cookie") or "").split(";")[0]
    token = CSRF.search(page.read().decode())
    assert token, "no CSRF token on the log-in page"
    form = urlencode({"csrf_token": token.group(1), "username": username, "password": password, "next": "/"})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    conn.request("POST", "/login", body=form, headers=headers)
    status = conn.getresponse().status
    conn.close()
    return status


def test_fifty_wrong_log_ins_from_one_address(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="yaguar.server.dashboard")
    with running_station(broker, tmp_path, dashboard=BACKOFF) as station:
        add_user(station.session_factory, "admin", "admin")
        add_user(station.session_factory, "ana", "viewer")
        attacker = WebClient(station.http_url)
        attacker.get("/login")
        statuses = []
        for _ in range(50):
            response = attacker.post(
                "/login",
                {"username": "admin", "password": "wrong password!", "next": "/"},
                allow_redirects=False,
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
                assert "Wait" in response.text or "Espere" in response.text
            time.sleep(0.05)
        # while admin waits, the right password from the same address is refused unread...
        right_now = attacker.post(
            "/login", {"username": "admin", "password": PASSWORD}, allow_redirects=False
        )
        # ...and another user, on another machine, logs in as usual
        assert login_from(station.http_url, "127.0.0.2", "ana", PASSWORD) == 303
        metrics = requests.get(station.http_url + "/metrics", timeout=10).text
        time.sleep(BACKOFF["login_backoff_max_s"] + 0.2)  # the back-off is over
        after = attacker.post("/login", {"username": "admin", "password": PASSWORD}, allow_redirects=False)

    assert statuses[:3] == [401, 401, 401]  # three free failures, answered at once
    assert statuses.count(429) > 20, statuses  # then most attempts just wait
    assert right_now.status_code == 429
    assert after.status_code == 303, after.text[:300]
    backoffs = [float(m) for m in re.findall(r"next attempt in ([\d.]+) s", caplog.text)]
    assert backoffs[:4] == [0.2, 0.4, 0.8, 1.6], backoffs  # doubling...
    assert set(backoffs[4:]) <= {1.6}, backoffs  # ...up to the ceiling
    assert "back-off" in caplog.text and "refused" in caplog.text
    throttled = re.search(r'yaguar_dashboard_logins_total\{outcome="throttled"\} (\d+)', metrics)
    assert throttled and int(throttled.group(1)) == statuses.count(429) + 1


def test_an_admin_lifts_a_users_wait(broker: Broker, tmp_path: Path) -> None:
    with running_station(broker, tmp_path, dashboard={**BACKOFF, "login_backoff_s": 60}) as station:
        add_user(station.session_factory, "ana", "viewer")
        add_user(station.session_factory, "boss", "admin")
        for _ in range(4):
            assert login_from(station.http_url, "127.0.0.3", "ana", "wrong password!") == 401
        assert login_from(station.http_url, "127.0.0.4", "ana", PASSWORD) == 429  # ana's name waits 60 s
        boss = WebClient(station.http_url)
        boss.login("boss")
        page = boss.get("/users").text
        assert 'id="locked-users"' in page and "ana" in page
        assert boss.post("/users/unlock", {"username": "ana"}, allow_redirects=False).status_code == 303
        assert 'id="locked-users"' not in boss.get("/users").text
        assert login_from(station.http_url, "127.0.0.4", "ana", PASSWORD) == 303


def test_a_restart_does_not_lift_the_wait(broker: Broker, tmp_path: Path) -> None:
    with running_station(broker, tmp_path, dashboard={**BACKOFF, "login_backoff_s": 60}) as station:
        add_user(station.session_factory, "ana", "viewer")
        for _ in range(4):
            assert login_from(station.http_url, "127.0.0.3", "ana", "wrong password!") == 401
        assert login_from(station.http_url, "127.0.0.4", "ana", PASSWORD) == 429
    with running_station(broker, tmp_path, dashboard={**BACKOFF, "login_backoff_s": 60}) as restarted:
        assert login_from(restarted.http_url, "127.0.0.4", "ana", PASSWORD) == 429  # ana's name still waits
        assert login_from(restarted.http_url, "127.0.0.3", "bob", PASSWORD) == 429  # and so does the address


def test_workers_on_one_postgresql_count_together() -> None:
    """Station processes on one PostgreSQL share the counts: failures counted at the same moment by two
    of them are all counted (one upsert each), and each sees the other's wait."""
    pytest.importorskip("psycopg")
    with postgres_cluster() as url:
        engines = [make_db_engine(url) for _ in range(2)]
        upgrade(engines[0])
        throttle = LoginThrottle(free=3, base_s=60, max_s=600)

        def fail(engine: Engine, n: int) -> None:
            sessions = make_session_factory(engine)
            for _ in range(n):
                with sessions.begin() as db:
                    throttle.failed(db, "admin", "10.0.0.9")

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(fail, engines, [20, 20]))
        with make_session_factory(engines[1])() as db:
            assert throttle.locked_users(db)[0][:2] == ("admin", 40)
            assert throttle.wait_s(db, "Admin", "10.0.0.1") > 500  # the name waits, from any address
            assert throttle.wait_s(db, "bob", "10.0.0.9") > 500  # and so does the address
            assert throttle.wait_s(db, "bob", "10.0.0.1") == 0
        for engine in engines:
            engine.dispose()


@pytest.mark.parametrize("access", ["loopback", "token"])
def test_metrics_can_be_limited(broker: Broker, tmp_path: Path, access: str) -> None:
    # (running_station's own `http` argument is the web server switch: the section goes in directly)
    station = Station(station_config(broker, tmp_path, http={"metrics_access": access})).start()
    try:
        url = f"{station.http_url}/metrics"
        plain = requests.get(url, timeout=10)
        with_token = requests.get(url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10)
    finally:
        station.stop()
    if access == "loopback":
        assert plain.status_code == 200  # this test is on the station's own PC
    else:
        assert plain.status_code == 403 and "metrics_access" in plain.text
        assert with_token.status_code == 200 and "yaguar_" in with_token.text
