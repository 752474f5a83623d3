"""Alerts inside a real station (Mosquitto, SQLite file, HTTP on a free port): the component's hook runs
in the event's transaction, its sender thread is woken by the commit, and its routes sit behind the
station's API token and a public callback URL (as behind a reverse proxy)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from tests.support.alert_harness import BIG_CATS, RANGERS, add_event, twilio_section
from tests.support.broker import Broker
from tests.support.fake_twilio import AUTH_TOKEN, FakeTwilio
from tests.support.polling import wait_until
from tests.support.station import API_TOKEN, running_station
from yaguar.alerts.web import STATUS_PATH

PUBLIC = "https://station.example.org"


@pytest.mark.asyncio
async def test_station_sends_an_alert_and_serves_it(broker: Broker, tmp_path: Path) -> None:
    with FakeTwilio() as twilio:
        alerts = {
            "enabled": True,
            "recipients": RANGERS,
            "rules": [BIG_CATS],
            "twilio": twilio_section(twilio.base_url, callback_base_url=PUBLIC),
            "twilio_auth_token": AUTH_TOKEN,  # what YAGUAR_TWILIO_AUTH_TOKEN fills in
        }
        with running_station(broker, tmp_path, alerts=alerts) as station:
            hooks = station.context.hooks.event_in_transaction
            assert len(hooks) == 1
            now = datetime.now(UTC)
            add_event(
                station.session_factory,
                hooks,
                now,
                species="Puma concolor",
                device="cam-07",
                device_name="Quebrada",
                confidence=0.88,
            )
            wait_until(lambda: len(twilio.messages) == 1, 10, "the SMS at Twilio")
            create = twilio.creates()[0]
            assert create.form["Body"].startswith("Yaguar: puma en Quebrada ")
            assert create.form["StatusCallback"] == f"{PUBLIC}{STATUS_PATH}?d=1"

            auth = {"Authorization": f"Bearer {API_TOKEN}"}
            async with aiohttp.ClientSession(station.http_url) as http:
                async with http.get("/api/v1/alerts") as response:
                    assert response.status == 401
                deadline = time.monotonic() + 5
                while True:
                    async with http.get("/api/v1/alerts", headers=auth) as response:
                        alert = (await response.json())["items"][0]
                    if alert["state"] == "sent" or time.monotonic() > deadline:
                        break
                assert (
                    alert["state"] == "sent"
                    and alert["deliveries"][0]["provider_sid"] == twilio.messages[0]["sid"]
                )
                form = {"MessageSid": twilio.messages[0]["sid"], "MessageStatus": "delivered"}
                path = f"{STATUS_PATH}?d=1"
                signature = twilio.sign(f"{PUBLIC}{path}", form)
                async with http.post(path, data=form, headers={"X-Twilio-Signature": signature}) as response:
                    assert response.status == 204
                local = twilio.sign(f"{station.http_url}{path}", form)  # signed for the wrong URL
                async with http.post(path, data=form, headers={"X-Twilio-Signature": local}) as response:
                    assert response.status == 403
                async with http.get("/metrics") as response:
                    text = await response.text()
                assert 'yaguar_alerts_total{kind="first",rule="big-cats"} 1.0' in text
