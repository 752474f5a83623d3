"""The [alerts] section: a full config validates, each mistake is refused with a readable reason, and
the Twilio auth token comes from the environment only."""

from __future__ import annotations

import re
from typing import Any

import pytest

from yaguar.alerts.config import AlertsConfig
from yaguar.config import ConfigError
from yaguar.server.config import config_from_dict

SID = "AC" + "ab" * 16
FULL: dict[str, Any] = {
    "enabled": True,
    "camera_groups": {"village": ["cam-01", "cam-02"]},
    "recipients": [
        {"name": "ana", "phone": "+573001112233", "language": "es"},
        {"name": "bob", "phone": "+573004445566", "language": "en", "escalation_level": 1},
    ],
    "rules": [
        {"name": "big-cats", "species": ["Panthera onca", "Leopardus"], "severity": "high"},
        {"name": "people", "categories": ["person"], "active": "night", "camera_groups": ["village"]},
    ],
    "quiet_hours": {"start": "22:00", "end": "05:30", "override_severity": "high"},
    "twilio": {"account_sid": SID, "from_number": "+15005550006", "validity_period_s": 300},
}


def alerts(data: dict[str, Any], env: dict[str, str] | None = None) -> AlertsConfig:
    env = {"YAGUAR_TWILIO_AUTH_TOKEN": "secret-token"} if env is None else env
    return config_from_dict({"alerts": dict(data)}, env=env).alerts  # a copy: the env is written into it


def test_full_config_and_token_from_environment() -> None:
    config = alerts(FULL)
    assert config.twilio_auth_token is not None
    assert config.twilio_auth_token.get_secret_value() == "secret-token"
    assert "secret-token" not in repr(config)
    assert config.cameras_of(config.rules[1]) == {"cam-01", "cam-02"}
    assert config.cameras_of(config.rules[0]) == set()
    assert AlertsConfig().enabled is False and AlertsConfig().twilio is None  # default: log channel


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"recipients": FULL["recipients"] * 2}, "two have the same name"),
        (
            {"rules": [{"name": "x", "species": ["Puma concolor"], "recipients": ["carl"]}]},
            "no recipient carl",
        ),
        (
            {"rules": [{"name": "x", "categories": ["person"], "camera_groups": ["farm"]}]},
            "no camera group farm",
        ),
        ({"rules": [{"name": "x", "min_confidence": 0.5}]}, "give categories or species"),
        ({"rules": [{"name": "x", "categories": ["cat"]}]}, "rules.0.categories.0"),
        (
            {"rules": [{"name": "x", "categories": ["person"], "channels": ["webhook"]}]},
            "needs [alerts.webhook]",
        ),
        (
            {"rules": [{"name": "x", "categories": ["person"], "min_confidence": 1.5}]},
            "less than or equal to 1",
        ),
        ({"recipients": [{"name": "ana", "phone": "3001112233"}]}, "recipients.0.phone"),
        (
            {"recipients": [{"name": "ana", "phone": "+573001112233", "language": "pt"}]},
            "recipients.0.language",
        ),
        ({"quiet_hours": {"start": "25:00", "end": "05:00"}}, "not a time of day"),
        ({"quiet_hours": {"start": "05:00", "end": "05:00"}}, "is empty"),
        ({"twilio": {"account_sid": "AC12", "from_number": "+15005550006"}}, "twilio.account_sid"),
        ({"twilio": {"account_sid": SID}}, "from_number or messaging_service_sid"),
        ({"twilio": {**FULL["twilio"], "validity_period_s": 40000}}, "validity_period_s"),
        ({"twilio": {**FULL["twilio"], "api_base_url": "ftp://x"}}, "api_base_url"),
        ({"link_template": "{base}/events"}, "must contain {event_id}"),
        ({"flood": {"recipient_hourly_cap": 0}}, "recipient_hourly_cap"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
    ],
)
def test_mistakes_are_refused_with_a_reason(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason.replace("[", r"\[").replace("{", r"\{")):
        alerts({**FULL, **change})


def test_twilio_without_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="YAGUAR_TWILIO_AUTH_TOKEN"):
        alerts(FULL, env={})


GSM = {"device": "/dev/serial/by-id/usb-modem-if00-port0", "smsc": "+573101000000"}


def test_gsm_section_pin_from_environment_and_channel_order() -> None:
    config = alerts({**FULL, "gsm": GSM}, env={"YAGUAR_TWILIO_AUTH_TOKEN": "t", "YAGUAR_GSM_PIN": "4321"})
    assert config.gsm is not None and config.gsm.connection == "at" and config.gsm.delivery_reports
    assert config.gsm_pin is not None and config.gsm_pin.get_secret_value() == "4321"
    assert "4321" not in repr(config)
    assert config.sms_route() == ["twilio", "gsm"], "Twilio first by default"
    assert alerts({**FULL, "gsm": GSM, "sms_channels": ["gsm", "twilio"]}).sms_route() == ["gsm", "twilio"]
    assert alerts({k: v for k, v in FULL.items() if k != "twilio"} | {"gsm": GSM}).sms_route() == ["gsm"]
    assert alerts({k: v for k, v in FULL.items() if k != "twilio"}).sms_route() == ["log"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sms_channels": ["gsm"]}, "gsm is listed but [alerts.gsm] is missing"),
        ({"gsm": GSM, "sms_channels": ["gsm", "gsm"]}, "a channel is listed twice"),
        ({"sms_channels": ["satellite"]}, "sms_channels"),
        ({"gsm": {**GSM, "device": ""}}, "device"),
        ({"gsm": {**GSM, "smsc": "3101000000"}}, "smsc"),
        ({"gsm": {**GSM, "baud": 115200}}, "baud"),
        ({"gsm": {**GSM, "keep_records": 1}}, "keep_records"),
        ({"backlog": {"merge_max_severity": "urgent"}}, "merge_max_severity"),
    ],
)
def test_gsm_mistakes_are_refused_with_a_reason(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(reason)):
        alerts({**FULL, **change})
