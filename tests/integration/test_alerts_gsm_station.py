"""The GSM channel inside a real station (Mosquitto, SQLite file, HTTP on a free port) with Gammu's dummy
phone as the modem and a dead Twilio: the alert goes out through the modem and the Alerts page says so
(es/en), /healthz and /metrics show the modem, a ranger's OK read from the modem acknowledges, and a
test SMS from the dashboard (admins only, bad numbers refused) and from ``yaguar-station alerts test``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.support.alert_harness import BIG_CATS, RANGERS, add_event, twilio_section
from tests.support.broker import Broker
from tests.support.config_files import write_station_config
from tests.support.dashboard_web import WebClient, add_user
from tests.support.fake_twilio import AUTH_TOKEN, FakeTwilio
from tests.support.gsm_modem import DummyNetwork, dummy_section
from tests.support.polling import wait_until
from tests.support.station import running_station
from yaguar.server.cli import main

ANA = RANGERS[0]["phone"]


def test_station_sends_through_the_modem_when_twilio_is_down(broker: Broker, tmp_path: Path) -> None:
    network = DummyNetwork(tmp_path / "modem")
    with FakeTwilio() as twilio:
        twilio.down("500")
        alerts = {
            "enabled": True,
            "recipients": RANGERS,
            "rules": [{**BIG_CATS, "recipients": ["ana"]}],
            "twilio": twilio_section(twilio.base_url),
            "twilio_auth_token": AUTH_TOKEN,
            "gsm": dummy_section(network.folder),
            "sms_channels": ["twilio", "gsm"],
        }
        with running_station(broker, tmp_path / "station", alerts=alerts) as station:
            add_user(station.session_factory, "boss", "admin")
            add_user(station.session_factory, "eve", "viewer")
            base = station.http_url
            health = requests.get(f"{base}/healthz", timeout=10).json()
            assert health["alerts"]["gsm"]["registered"] is True
            assert health["alerts"]["gsm"]["signal_percent"] == 42
            assert list(health["alerts"]["sms_channels"]) == ["twilio", "gsm"]
            metrics = requests.get(f"{base}/metrics", timeout=10).text
            assert "yaguar_gsm_registered 1.0" in metrics and "yaguar_gsm_signal_percent 42.0" in metrics

            hooks = station.context.hooks.event_in_transaction
            add_event(
                station.session_factory,
                hooks,
                datetime.now(UTC),
                device="cam-07",
                device_name="Quebrada",
                confidence=0.91,
            )
            api = {"Authorization": "Bearer test-token-123"}

            def sent_by_modem() -> bool:
                alerts = requests.get(f"{base}/api/v1/alerts", headers=api, timeout=10).json()["items"]
                return bool(alerts) and alerts[0]["state"] == "sent"

            wait_until(sent_by_modem, 15, "the alert sent by the modem")
            item = requests.get(f"{base}/api/v1/alerts", headers=api, timeout=10).json()["items"][0]
            assert [(d["channel"], d["state"]) for d in item["deliveries"]] == [
                ("twilio", "passed"),
                ("gsm", "sent"),
            ]
            assert twilio.messages == []

            boss = WebClient(base)
            boss.login("boss")
            page = boss.get("/alerts").text
            row = page.split(f'data-alert-id="{item["id"]}"')[1].split("</tr>")[0]
            assert "enviada por módem GSM" in row and "pasada al siguiente canal" in row
            boss.post("/lang", {"lang": "en"})
            english = boss.get("/alerts").text
            assert "sent via GSM modem" in english.split(f'data-alert-id="{item["id"]}"')[1]

            # The ranger answers through the modem; the station's watcher reads it.
            network.deliver(ANA, f"OK {item['ack_code']}")
            wait_until(
                lambda: (
                    requests.get(f"{base}/api/v1/alerts/{item['id']}", headers=api, timeout=10).json()[
                        "acked_by"
                    ]
                    == "ana"
                ),
                15,
                "the alert acknowledged by ana",
            )

            boss.post("/lang", {"lang": "es"})
            # A test SMS from the dashboard: Twilio is down, the modem takes it.
            result = boss.post("/alerts/test", {"number": "+573001234567", "channel": ""})
            assert result.status_code == 200
            assert "Twilio (internet): <b>caído, no se envió nada</b>" in result.text
            assert "módem GSM: <b>aceptado</b>" in result.text
            refused = boss.post("/alerts/test", {"number": "3001234567", "channel": ""})
            assert (
                refused.status_code == 400 and "no es un número de teléfono en formato E.164" in refused.text
            )
            eve = WebClient(base)
            eve.login("eve")
            assert 'id="test-sms"' not in eve.get("/alerts").text
            assert eve.post("/alerts/test", {"number": "+573001234567"}).status_code == 403


def gsm_config(folder: Path, modem: Path, file: str = "station.toml") -> Path:
    """A station that sends SMS through the dummy modem in ``modem`` only."""
    alerts = {
        "enabled": True,
        "recipients": [{"name": "ana", "phone": "+573001112233", "language": "en"}],
        "rules": [{"name": "big-cats", "species": ["Panthera onca"], "severity": "high"}],
        "gsm": {"device": modem, "connection": "none", "model": "dummy"},
    }
    return write_station_config(folder, file, alerts=alerts)


def test_alerts_test_command_sends_through_the_modem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network = DummyNetwork(tmp_path / "modem")
    path = gsm_config(tmp_path, network.folder)
    assert main(["--config", str(path), "alerts", "test", "+573001112233"]) == 0
    out = capsys.readouterr().out
    assert "GSM modem: SIM ready, network HomeNetwork, signal 42%" in out
    assert "gsm: accepted" in out and "Test SMS sent to +573001112233 via gsm" in out
    assert network.records() == ["Sent"], "the modem keeps its record of it"
    assert main(["--config", str(path), "alerts", "list"]) == 0
    assert "No alerts yet." in capsys.readouterr().out, "a test SMS is not an alert"
    assert main(["--config", str(path), "alerts", "test", "0300 111 2233"]) == 2
    assert "not a phone number in E.164 form" in capsys.readouterr().out
    assert main(["--config", str(path), "alerts", "test", "+573001112233", "--channel", "twilio"]) == 2
    assert "'twilio' is not configured" in capsys.readouterr().out
    gone = gsm_config(tmp_path, tmp_path / "no" / "modem", "station-unplugged.toml")
    assert main(["--config", str(gone), "alerts", "test", "+573001112233"]) == 1
    out = capsys.readouterr().out
    assert "gsm: down, nothing sent" in out and "No channel sent the test SMS" in out
