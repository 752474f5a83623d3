"""Device alerts through the real outbox and sender on a real SQLite file and a throwaway PostgreSQL
cluster, Twilio's API faked on 127.0.0.1: a camera going silent gives one offline alert and one "back" message; battery, spool, disk and
clock troubles alert once per cooldown; a storm of 50 silent cameras is one grouped message."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, update

from tests.support.alert_harness import Clock, Harness, alerts_config
from tests.support.fake_twilio import FakeTwilio
from tests.support.postgres import postgres_cluster
from yaguar.alerts.deliveries import DeliveryPlanner
from yaguar.alerts.device_watch import DeviceWatch
from yaguar.server.device_alerts import DeviceWatchLoop
from yaguar.storage.models import Device, Heartbeat

DEVICES = {"offline_after_s": 600, "cooldown_s": 3600, "storm_min_cameras": 5}


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both databases; on PostgreSQL one cluster for the module and a new database for each test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'station.db'}"
    url: str = request.getfixturevalue("postgres")
    name = f"alerts_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return f"{url.rsplit('/', 1)[0]}/{name}"


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


def _watch(h: Harness, clock: Clock) -> DeviceWatchLoop:
    config = h.config.alerts
    watch = DeviceWatch(
        config, DeliveryPlanner(config, h.config.http.public_url, h.metrics), h.metrics, "http://st.lan"
    )
    return DeviceWatchLoop(watch, h.sessions, clock, h.sender.wake)


def _cameras(h: Harness, clock: Clock, n: int, **fields: object) -> None:
    with h.sessions.begin() as db:
        for i in range(1, n + 1):
            db.add(
                Device(
                    id=f"cam-{i:02d}", name=f"Sendero {i:02d}", status="online", last_seen=clock(), **fields
                )
            )


def _heard(h: Harness, clock: Clock, *ids: str) -> None:
    with h.sessions.begin() as db:
        db.execute(update(Device).where(Device.id.in_(ids)).values(last_seen=clock(), status="online"))


@pytest.mark.asyncio
async def test_a_camera_going_silent_gives_one_offline_alert_and_one_back_message(
    db_url: str, twilio: FakeTwilio
) -> None:
    clock = Clock()
    h = Harness(db_url, alerts_config(twilio.base_url, devices=DEVICES), clock)
    loop = _watch(h, clock)
    try:
        _cameras(h, clock, 2)
        for _ in range(10):  # cam-01 goes silent; cam-02 keeps talking; a look every minute
            clock.advance(60)
            _heard(h, clock, "cam-02")
            loop.check_once()
            await h.settle()
        creates = twilio.creates()
        assert [c.form["Body"] for c in creates] == [
            "Yaguar: camara Sendero 01 sin señal desde 07:00 (10 min). http://st.lan/cameras/cam-01"
        ], "one message, to the one level-0 ranger, in Spanish; UTC as the camera sent no frame yet"
        for _ in range(5):  # still silent: nothing more
            clock.advance(60)
            loop.check_once()
        await h.settle()
        assert len(twilio.creates()) == 1
        clock.advance(60)
        _heard(h, clock, "cam-01")  # a heartbeat: it is back
        loop.check_once()
        await h.settle()
        bodies = [c.form["Body"] for c in twilio.creates()]
        assert bodies[1] == "Yaguar: camara Sendero 01 volvio a dar señal a las 07:16 tras 16 min sin señal."
        loop.check_once()
        await h.settle()
        assert len(twilio.creates()) == 2
        alerts = h.alerts()
        assert [(a.rule, a.device_id, a.event_id, a.state) for a in alerts] == [
            ("device-offline", "cam-01", None, "sent"),
            ("device-back", "cam-01", None, "sent"),
        ]
        assert {d.channel for a in alerts for d in a.deliveries} == {"twilio", "log"}
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_a_storm_of_50_silent_cameras_is_one_grouped_message(db_url: str, twilio: FakeTwilio) -> None:
    clock = Clock()
    h = Harness(db_url, alerts_config(twilio.base_url, devices=DEVICES), clock)
    loop = _watch(h, clock)
    try:
        _cameras(h, clock, 50)
        clock.advance(601)  # the station's radio link fails: all 50 silent at once
        loop.check_once()
        await h.settle()
        bodies = [c.form["Body"] for c in twilio.creates()]
        assert bodies == [
            "Yaguar: 50 camaras sin señal desde 07:00: Sendero 01, Sendero 02, Sendero 03 y 47 mas. "
            "http://st.lan/cameras"
        ]
        clock.advance(60)
        _heard(h, clock, *[f"cam-{i:02d}" for i in range(1, 51)])
        loop.check_once()
        await h.settle()
        assert len(twilio.creates()) == 2 and twilio.creates()[1].form["Body"].startswith(
            "Yaguar: 50 camaras volvieron a dar señal a las 07:11"
        )
        alerts = h.alerts()
        assert [(a.rule, a.device_id, a.event_count) for a in alerts] == [
            ("device-offline", "*", 50),
            ("device-back", "*", 50),
        ]
    finally:
        await h.close()


@pytest.mark.asyncio
async def test_battery_spool_disk_and_clock_alert_once_per_cooldown(db_url: str, twilio: FakeTwilio) -> None:
    clock = Clock()
    config = alerts_config(twilio.base_url, devices=DEVICES)
    h = Harness(db_url, config, clock)
    loop = _watch(h, clock)
    try:
        beat = {"battery_v": 11.2, "spool_depth": 900, "spool_bytes": 10**8, "disk_free_bytes": 10**8}
        _cameras(h, clock, 1, last_heartbeat=beat)
        with h.sessions.begin() as db:
            db.add(
                Heartbeat(
                    device_id="cam-01",
                    sent_at=clock() + timedelta(seconds=400),
                    received_at=clock(),
                    payload=beat,
                )
            )
        loop.check_once()
        loop.check_once()
        await h.settle()
        bodies = sorted(c.form["Body"] for c in twilio.creates())
        assert bodies == [
            "Yaguar: bateria baja en Sendero 01: 11.2 V. http://st.lan/cameras/cam-01",
            "Yaguar: el reloj de Sendero 01 esta desfasado (+400 s). http://st.lan/cameras/cam-01",
            "Yaguar: poco disco en Sendero 01: 100 MB libres. http://st.lan/cameras/cam-01",
            "Yaguar: se llena la cola de Sendero 01: 900 fotos sin enviar. http://st.lan/cameras/cam-01",
        ]
        # the battery recovers and sags again within the cooldown: no second message
        with h.sessions.begin() as db:
            db.get(Device, "cam-01").last_heartbeat = {**beat, "battery_v": 12.6}
        loop.check_once()
        with h.sessions.begin() as db:
            db.get(Device, "cam-01").last_heartbeat = beat
        loop.check_once()
        await h.settle()
        assert len(twilio.creates()) == 4
        assert h.metric("yaguar_alerts_held_back_total", reason="device_cooldown") == 1
        # after the cooldown it alerts again
        clock.advance(3601)
        _heard(h, clock, "cam-01")
        with h.sessions.begin() as db:
            db.get(Device, "cam-01").last_heartbeat = {**beat, "battery_v": 12.6}
        loop.check_once()
        with h.sessions.begin() as db:
            db.get(Device, "cam-01").last_heartbeat = beat
        loop.check_once()
        await h.settle()
        assert sum("bateria" in c.form["Body"] for c in twilio.creates()) == 2
    finally:
        await h.close()


def test_device_rules_refuse_an_unknown_recipient() -> None:
    with pytest.raises(ValueError, match="devices: no recipient nobody"):
        alerts_config(None, devices={"recipients": ["nobody"]})
