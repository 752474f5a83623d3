"""Turning an alert into deliveries (one per recipient and channel, the body in the recipient's language),
the per-recipient hourly cap, the alert's overall state, and acknowledgement. Used inside the event's
transaction (first alerts), and by the sender (summaries, escalation)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yaguar.storage.models import Device
from yaguar.taxonomy import common_name

from .config import AlertsConfig, Recipient, Rule
from .messages import AlertFacts, render
from .metrics import AlertMetrics
from .models import NOT_A_MESSAGE, Alert, Delivery
from .segments import count_segments

log = logging.getLogger(__name__)


class DeliveryPlanner:
    """Writes the deliveries of an alert for one escalation level."""

    def __init__(self, config: AlertsConfig, public_url: str, metrics: AlertMetrics) -> None:
        self.config = config
        self.public_url = public_url.rstrip("/")
        self.metrics = metrics

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.config.rules if r.name == name), None)

    def recipients(self, rule: Rule | None) -> list[Recipient]:
        if rule is None or not rule.recipients:
            return list(self.config.recipients)
        return [r for r in self.config.recipients if r.name in rule.recipients]

    def levels(self, rule: Rule | None) -> list[int]:
        return sorted({r.escalation_level for r in self.recipients(rule)})

    def link(self, event_id: int) -> str:
        return self.config.link_template.format(base=self.public_url, event_id=event_id)

    def facts(self, session: Session, alert: Alert) -> AlertFacts:
        device = session.get(Device, alert.device_id)
        camera = (device.name if device is not None and device.name else None) or alert.device_id
        return AlertFacts(
            kind=alert.kind,
            category=alert.category,
            species=alert.species,
            count=alert.max_count,
            confidence=alert.max_confidence,
            camera=camera,
            first_seen_at=alert.first_seen_at,
            last_seen_at=alert.last_seen_at,
            utc_offset_min=alert.utc_offset_min,
            event_id=alert.last_event_id
            if alert.kind == "summary"
            else (alert.event_id or alert.last_event_id),
            event_count=alert.event_count,
            ack_code=alert.ack_code,
        )

    def plan(self, session: Session, alert: Alert, level: int, now: datetime) -> list[Delivery]:
        """Add the deliveries of ``alert`` for recipients at ``level`` (webhook and log only at level 0)."""
        rule = self.rule(alert.rule)
        channels = rule.channels if rule is not None else ["sms"]
        facts = self.facts(session, alert)
        link = self.link(facts.event_id)
        unicode = self.config.sms_unicode()
        route = self.config.sms_route()
        # One SMS channel (the first; the sender passes it on if that one is down), or every one for an
        # escalation when the config asks for it.
        sms_channels = route if level > 0 and self.config.escalation.all_channels else route[:1]
        added: list[Delivery] = []
        if "sms" in channels:
            for person in self.recipients(rule):
                if person.escalation_level != level:
                    continue
                body = render(facts, person.language, link, unicode)
                capped = self.over_cap(session, person.name, now)
                for sms_channel in sms_channels:
                    delivery = Delivery(
                        channel=sms_channel,
                        recipient=person.name,
                        address=person.phone,
                        language=person.language,
                        escalation_level=level,
                        body=body,
                        segments=count_segments(body).segments,
                        next_attempt_at=now,
                    )
                    if capped:
                        delivery.state = "capped"
                        delivery.last_error = "per-recipient hourly cap reached"
                        self.metrics.held_back.labels("capped").inc()
                        log.info("alert %s not sent to %s: hourly cap reached", alert.id, person.name)
                    added.append(delivery)
        if level == 0 and "webhook" in channels and self.config.webhook is not None:
            body = json.dumps(self.payload(alert, facts, link), ensure_ascii=False)
            added.append(
                Delivery(channel="webhook", address=self.config.webhook.url, body=body, next_attempt_at=now)
            )
        if level == 0 and "log" in channels:
            added.append(
                Delivery(channel="log", address="log", body=render(facts, "en", link), next_attempt_at=now)
            )
        for delivery in added:
            delivery.created_at = now
            delivery.alert = alert
            session.add(delivery)
        refresh_state(alert)
        return added

    def over_cap(self, session: Session, recipient: str, now: datetime) -> bool:
        sent_last_hour = session.scalar(
            select(func.count(Delivery.id)).where(
                Delivery.recipient == recipient,
                Delivery.created_at > now - timedelta(hours=1),
                Delivery.state.not_in(NOT_A_MESSAGE),
            )
        )
        return (sent_last_hour or 0) >= self.config.flood.recipient_hourly_cap

    def payload(self, alert: Alert, facts: AlertFacts, link: str) -> dict[str, object]:
        return {
            "alert_id": alert.id,
            "kind": alert.kind,
            "rule": alert.rule,
            "severity": alert.severity,
            "event_id": facts.event_id,
            "event_count": alert.event_count,
            "device_id": alert.device_id,
            "camera": facts.camera,
            "category": alert.category,
            "species": alert.species,
            "common_name": {lang: common_name(alert.species, lang) for lang in ("es", "en")}
            if alert.species
            else None,
            "count": alert.max_count,
            "confidence": round(alert.max_confidence, 4),
            "first_seen_at": alert.first_seen_at.isoformat(),
            "last_seen_at": alert.last_seen_at.isoformat(),
            "utc_offset_min": alert.utc_offset_min,
            "ack_code": alert.ack_code,
            "link": link,
        }


def refresh_state(alert: Alert) -> None:
    """The alert's state from its deliveries: in flight first, then waiting, doubtful, done."""
    if alert.state in ("held", "suppressed"):
        return
    states = {d.state for d in alert.deliveries} - NOT_A_MESSAGE
    if not states and any(d.state == "merged" for d in alert.deliveries):
        alert.state = "merged"
    elif not states:
        alert.state = "suppressed"
        alert.note = alert.note or "nobody to send to (no recipients, or all over their hourly cap)"
    elif "sending" in states:
        alert.state = "sending"
    elif "pending" in states:
        alert.state = "pending"
    elif "unknown" in states:
        alert.state = "unknown"
    elif "sent" in states:
        alert.state = "sent"
    else:
        alert.state = "failed"


def acknowledge(session: Session, alert: Alert, by: str, now: datetime) -> bool:
    """Mark the alert acknowledged and stop its escalation; False when it already was."""
    if alert.acked_at is not None:
        return False
    alert.acked_at = now
    alert.acked_by = by[:40]
    alert.next_escalation_at = None
    return True
