"""Configuration of alerts (``[alerts]`` in station.toml): rules, recipients, flood control, channels.

Example::

    [alerts]
    enabled = true
    [alerts.camera_groups]
    village = ["cam-01", "cam-02"]
    [[alerts.recipients]]
    name = "ana"
    phone = "+50688887777"
    language = "es"
    [[alerts.rules]]
    name = "big-cats"
    species = ["Panthera onca", "Puma concolor", "Leopardus pardalis"]
    min_confidence = 0.6
    severity = "high"
    [alerts.twilio]
    account_sid = "AC0123456789abcdef0123456789abcdef"
    from_number = "+15005550006"

    [alerts.gsm]
    device = "/dev/serial/by-id/usb-HUAWEI_Mobile-if00-port0"
    smsc = "+573101000000"

The Twilio auth token is never in the file: it comes from ``YAGUAR_TWILIO_AUTH_TOKEN``; nor is the SIM's
PIN: ``YAGUAR_GSM_PIN``. With both Twilio and a modem, SMS go through ``sms_channels`` in order: a channel
that is down passes the message to the next one.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from yaguar.config import Section

from .device_config import DeviceRules

Severity = Literal["low", "medium", "high"]
Language = Literal["es", "en"]
Category = Literal["animal", "person", "vehicle"]
ChannelName = Literal["sms", "webhook", "log"]
SmsChannel = Literal["twilio", "gsm"]

SEVERITY_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2}
E164 = r"^\+[1-9][0-9]{6,14}$"
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def parse_hhmm(value: str) -> time:
    match = _HHMM.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a time of day as HH:MM (00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))


class DailyWindow(Section):
    """A time of day window in the camera's local time; it may wrap midnight (22:00 to 05:00)."""

    start: str = Field(description="local start, HH:MM")
    end: str = Field(description="local end, HH:MM (exclusive); before start means the window wraps midnight")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        parse_hhmm(value)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> DailyWindow:
        if self.start == self.end:
            raise ValueError("a window with start == end is empty; remove it instead")
        return self

    def contains(self, local: time) -> bool:
        start, end = parse_hhmm(self.start), parse_hhmm(self.end)
        minute = local.replace(second=0, microsecond=0)
        if start < end:
            return start <= minute < end
        return minute >= start or minute < end


class QuietHours(DailyWindow):
    override_severity: Severity = Field(
        default="high", description="alerts of this severity or above are sent during quiet hours anyway"
    )


class Recipient(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$", description="short unique name used by rules")
    phone: str = Field(pattern=E164, description="mobile number in E.164 form, +countrycode...")
    language: Language = Field(default="es", description="language of the messages this person receives")
    escalation_level: int = Field(
        default=0,
        ge=0,
        le=9,
        description="0: gets alerts at once; 1, 2...: gets a high-severity alert nobody acknowledged, "
        "after escalation.after_s per level",
    )


class Rule(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$", description="unique rule name (kept on each alert)")
    categories: list[Category] = Field(
        default_factory=list, description="event categories that match, e.g. person; empty: any with species"
    )
    species: list[str] = Field(
        default_factory=list,
        description="scientific names (or a genus alone) that match, case-insensitive; empty: any species",
    )
    min_confidence: float = Field(default=0.5, ge=0.0, le=1.0, description="event confidence needed")
    min_count: int = Field(default=1, ge=1, le=1000, description="individuals seen at once needed")
    cameras: list[str] = Field(default_factory=list, description="device ids; with camera_groups, empty: all")
    camera_groups: list[str] = Field(default_factory=list, description="names from [alerts.camera_groups]")
    active: Literal["always", "night", "day"] = Field(
        default="always", description="night: only events in [alerts.night]; day: only outside it"
    )
    severity: Severity = Field(default="medium", description="high ones escalate and pass quiet hours")
    channels: list[ChannelName] = Field(
        default_factory=lambda: list[ChannelName](["sms"]),
        max_length=3,
        description="sms goes to the log without Twilio",
    )
    recipients: list[str] = Field(default_factory=list, description="recipient names; empty: all of them")

    @model_validator(mode="after")
    def _selects_something(self) -> Rule:
        if not self.categories and not self.species:
            raise ValueError(f"rule {self.name}: give categories or species (or both)")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"rule {self.name}: a channel is listed twice")
        return self


class FloodControl(Section):
    cooldown_s: float = Field(
        default=900.0,
        ge=0,
        le=86_400,
        description="after an alert, no new immediate alert for the same (rule, camera, species) this long",
    )
    group_window_s: float = Field(
        default=300.0,
        ge=1,
        le=86_400,
        description="matches during the cooldown are collected this long, then sent as one summary",
    )
    recipient_hourly_cap: int = Field(
        default=20, ge=1, le=1000, description="messages to one person per rolling hour; more are dropped"
    )
    max_event_age_s: float = Field(
        default=3600.0, ge=10, le=7 * 86_400, description="older events (a late upload) do not alert"
    )


class Escalation(Section):
    after_s: float = Field(
        default=600.0, ge=5, le=86_400, description="unacknowledged this long: the next level is told"
    )
    min_severity: Severity = Field(default="high", description="severities that escalate")
    all_channels: bool = Field(
        default=False,
        description="true: an escalation (level 1 and up) goes out on every SMS channel at once, not "
        "only on the first one that works",
    )


class TwilioConfig(Section):
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$", description="the account SID, AC + 32 hex")
    from_number: str | None = Field(default=None, pattern=E164, description="sending number, E.164")
    messaging_service_sid: str | None = Field(
        default=None, pattern=r"^MG[0-9a-fA-F]{32}$", description="or a messaging service, MG + 32 hex"
    )
    validity_period_s: int = Field(
        default=900, ge=1, le=36_000, description="Twilio drops a message still queued after this long"
    )
    api_base_url: str = Field(
        default="https://api.twilio.com",
        pattern=r"^https?://[^/\s]+$",
        description="scheme and host of the REST API; tests point it at a local fake",
    )
    request_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="a request without an answer by then is 'unknown'"
    )
    callback_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+[^/]$",
        description="public base URL Twilio calls back (delivery status); none: no status callbacks",
    )
    unicode: bool = Field(
        default=False,
        description="false: letters outside GSM-7 (á í ó ú) lose their accent so a message stays one "
        "160-character segment; true: keep them (UCS-2, 70 characters a segment)",
    )


class GsmConfig(Section):
    """A USB 3G/4G modem driven by Gammu: SMS out, replies and delivery reports in."""

    device: str = Field(
        min_length=1,
        max_length=300,
        description="the modem's serial port (best a stable /dev/serial/by-id/... name); with "
        "model = dummy, the folder of Gammu's dummy phone (tests)",
    )
    connection: str = Field(
        default="at", pattern=r"^[a-z0-9_-]{2,30}$", description="Gammu connection: at (most USB modems)"
    )
    model: str = Field(
        default="", pattern=r"^[a-z0-9_-]{0,30}$", description="Gammu model; empty: detect it; dummy: tests"
    )
    smsc: str | None = Field(
        default=None, pattern=E164, description="the operator's SMS centre number; none: the one on the SIM"
    )
    unicode: bool = Field(default=False, description="as twilio.unicode, when the modem is the first channel")
    delivery_reports: bool = Field(default=True, description="ask the network for a delivery report")
    send_timeout_s: float = Field(
        default=60.0, gt=0, le=600, description="a send without the modem's answer by then is 'unknown'"
    )
    status_interval_s: float = Field(
        default=30.0, gt=0, le=3600, description="read signal, registration and SIM this often"
    )
    inbox_interval_s: float = Field(
        default=5.0, gt=0, le=3600, description="read replies and delivery reports from the modem this often"
    )
    keep_records: int = Field(
        default=30,
        ge=5,
        le=500,
        description="records of sent messages kept in the modem's memory (to settle a send a crash cut)",
    )


class Backlog(Section):
    """Quiet links: what the outbox does with what piled up while no channel worked."""

    stale_after_s: float = Field(
        default=900.0,
        ge=10,
        le=7 * 86_400,
        description="unsent this long, low-severity messages to one person are merged into one summary",
    )
    merge_max_severity: Severity = Field(
        default="low", description="severities merged when stale (high ones are always sent as they are)"
    )


class WebhookConfig(Section):
    url: str = Field(pattern=r"^https?://[^\s]+$", description="receives a JSON POST per alert")
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class SenderConfig(Section):
    max_attempts: int = Field(
        default=8,
        ge=1,
        le=100,
        description="tries of one message before 'failed'; an SMS keeps waiting while every SMS channel is down",
    )
    backoff_initial_s: float = Field(default=1.0, gt=0, le=600, description="first retry delay, doubles")
    backoff_max_s: float = Field(default=300.0, gt=0, le=3600)
    concurrency: int = Field(default=8, ge=1, le=64, description="messages in flight at once")
    poll_interval_s: float = Field(default=1.0, gt=0, le=60, description="look for due work this often")
    reconcile_after_s: float = Field(
        default=10.0, ge=0, le=3600, description="wait this long before asking Twilio about an 'unknown'"
    )
    reconcile_give_up_s: float = Field(
        default=600.0,
        ge=1,
        le=86_400,
        description="an 'unknown' Twilio still does not know after this long was never created: resend it",
    )
    claim_expiry_s: float = Field(
        default=180.0,
        ge=5,
        le=3600,
        description="a message still 'sending' this long after it was claimed was interrupted (a worker "
        "killed mid-send): the provider is asked whether it has it; longer than any channel takes to send",
    )
    channel_down_hold_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="an SMS channel that failed is skipped this long (messages go to the next one)",
    )


class AlertsConfig(Section):
    enabled: bool = Field(default=False, description="evaluate alert rules on events and send messages")
    rules: list[Rule] = Field(default_factory=list, max_length=200)
    recipients: list[Recipient] = Field(default_factory=list, max_length=200)
    camera_groups: dict[str, list[str]] = Field(
        default_factory=dict, description="named lists of device ids, used by rules"
    )
    night: DailyWindow = Field(
        default_factory=lambda: DailyWindow(start="18:00", end="06:00"), description="local night"
    )
    quiet_hours: QuietHours | None = Field(default=None, description="low severities are not sent then")
    flood: FloodControl = Field(default_factory=FloodControl)
    escalation: Escalation = Field(default_factory=Escalation)
    sender: SenderConfig = Field(default_factory=SenderConfig)
    twilio: TwilioConfig | None = Field(
        default=None, description="SMS through Twilio; none: SMS go to the log"
    )
    twilio_auth_token: SecretStr | None = Field(default=None, description="from YAGUAR_TWILIO_AUTH_TOKEN")
    gsm: GsmConfig | None = Field(default=None, description="SMS through a USB GSM modem with Gammu")
    gsm_pin: SecretStr | None = Field(default=None, description="the SIM's PIN, from YAGUAR_GSM_PIN")
    sms_channels: list[SmsChannel] = Field(
        default_factory=list,
        max_length=2,
        description='SMS channels in the order tried, e.g. ["twilio", "gsm"]; empty: each configured '
        "one, Twilio first; none configured: the log",
    )
    backlog: Backlog = Field(default_factory=Backlog)
    webhook: WebhookConfig | None = None
    devices: DeviceRules = Field(default_factory=DeviceRules, description="alerts on cameras in trouble")
    link_template: str = Field(
        default="{base}/e/{event_id}",
        max_length=200,
        description="short link to the event in a message; {base} is [http] public_url",
    )

    @model_validator(mode="after")
    def _consistent(self) -> AlertsConfig:
        problems = []
        names = [r.name for r in self.recipients]
        if len(set(names)) != len(names):
            problems.append("recipients: two have the same name")
        rules = [r.name for r in self.rules]
        if len(set(rules)) != len(rules):
            problems.append("rules: two have the same name")
        for rule in self.rules:
            problems += [f"rule {rule.name}: no recipient {n}" for n in rule.recipients if n not in names]
            problems += [
                f"rule {rule.name}: no camera group {g}"
                for g in rule.camera_groups
                if g not in self.camera_groups
            ]
            if "webhook" in rule.channels and self.webhook is None:
                problems.append(f"rule {rule.name}: channel webhook needs [alerts.webhook]")
        if self.twilio is not None:
            if (self.twilio.from_number is None) == (self.twilio.messaging_service_sid is None):
                problems.append("twilio: give from_number or messaging_service_sid (one of them)")
            if self.twilio_auth_token is None:
                problems.append("twilio: the auth token is missing; set YAGUAR_TWILIO_AUTH_TOKEN")
        problems += [f"devices: no recipient {n}" for n in self.devices.recipients if n not in names]
        if len(set(self.sms_channels)) != len(self.sms_channels):
            problems.append("sms_channels: a channel is listed twice")
        for name in self.sms_channels:
            if getattr(self, name) is None:
                problems.append(f"sms_channels: {name} is listed but [alerts.{name}] is missing")
        if "{event_id}" not in self.link_template:
            problems.append("link_template: must contain {event_id}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def sms_route(self) -> list[str]:
        """The SMS channels in the order tried; ["log"] when none is configured."""
        if self.sms_channels:
            return list(self.sms_channels)
        route = [name for name in ("twilio", "gsm") if getattr(self, name) is not None]
        return route or ["log"]

    def sms_unicode(self) -> bool:
        """Whether bodies keep letters outside GSM-7: the setting of the first SMS channel."""
        first = self.sms_route()[0]
        if first == "twilio" and self.twilio is not None:
            return self.twilio.unicode
        if first == "gsm" and self.gsm is not None:
            return self.gsm.unicode
        return False

    def cameras_of(self, rule: Rule) -> set[str]:
        """Device ids a rule is limited to; empty set: every camera."""
        cameras = set(rule.cameras)
        for group in rule.camera_groups:
            cameras.update(self.camera_groups[group])
        return cameras
