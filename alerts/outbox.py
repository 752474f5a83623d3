"""The outbox writer: called by the pipeline inside the transaction that creates or changes an event, it
writes the alert (and its deliveries) in that same transaction, so an event never commits without its
alert, nor an alert without its event.

Flood control, per (rule, camera, species):
  * the first match after a quiet spell is an immediate alert;
  * matches during the cooldown that follows are collected into one held summary, released by the sender
    ``group_window_s`` after it opened;
  * each recipient gets at most ``recipient_hourly_cap`` messages in any hour (``deliveries.py``).
An event updated many times alerts once per rule (``alert_triggers`` is unique on rule and event).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from yaguar.storage.base import utcnow
from yaguar.storage.models import Event

from .config import AlertsConfig, Rule
from .deliveries import DeliveryPlanner
from .metrics import AlertMetrics
from .models import Alert, AlertTrigger
from .rules import EventFacts, escalates, held_by_quiet_hours, matching_rules

log = logging.getLogger(__name__)

_WAKE_FLAG = "yaguar_alerts_wake_registered"


def group_key(rule: str, device_id: str, what: str) -> str:
    return f"{rule}|{device_id}|{what.lower()}"[:240]


def facts_of(event: Event) -> EventFacts:
    return EventFacts(
        event_id=event.id,
        device_id=event.device_id,
        category=event.category,
        species=event.species,
        count=event.count or 0,
        confidence=event.confidence or 0.0,
        started_at=event.started_at,
        utc_offset_min=event.utc_offset_min or 0,
    )


class Outbox:
    def __init__(
        self,
        config: AlertsConfig,
        planner: DeliveryPlanner,
        metrics: AlertMetrics,
        clock: Callable[[], datetime] = utcnow,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.planner = planner
        self.metrics = metrics
        self.clock = clock
        self.wake = wake

    def on_event(self, session: Session, event: Event) -> None:
        """The ``event_in_transaction`` hook. Raises only on database errors, which must roll the
        event back too (an alert lost silently is worse than an event retried)."""
        if event.id is None:
            session.flush()
        facts = facts_of(event)
        rules = matching_rules(self.config, facts)
        if not rules:
            return
        now = self.clock()
        if now - facts.started_at > timedelta(seconds=self.config.flood.max_event_age_s):
            self.metrics.held_back.labels("stale").inc()
            log.info("event %s is %s old: too late to alert", facts.event_id, now - facts.started_at)
            return
        wrote = False
        for rule in rules:
            done = session.scalar(
                select(AlertTrigger.id).where(
                    AlertTrigger.rule == rule.name, AlertTrigger.event_id == facts.event_id
                )
            )
            if done is not None:
                self.metrics.held_back.labels("repeated").inc()
                continue
            self._add(session, rule, facts, now)
            wrote = True
        if wrote and self.wake is not None and not session.info.get(_WAKE_FLAG):
            session.info[_WAKE_FLAG] = True
            sa_event.listen(session, "after_commit", self._after_commit, once=True)

    def _after_commit(self, session: Session) -> None:
        session.info.pop(_WAKE_FLAG, None)
        if self.wake is not None:
            self.wake()

    def _add(self, session: Session, rule: Rule, facts: EventFacts, now: datetime) -> None:
        key = group_key(rule.name, facts.device_id, facts.species or facts.category)
        last_first = session.scalars(
            select(Alert)
            .where(Alert.group_key == key, Alert.kind == "first")
            .order_by(Alert.created_at.desc(), Alert.id.desc())
            .limit(1)
        ).first()
        cooling = last_first is not None and now - last_first.created_at < timedelta(
            seconds=self.config.flood.cooldown_s
        )
        if cooling:
            alert = self._fold_into_summary(session, rule, key, facts, now)
        else:
            alert = self._new_alert(session, rule, key, "first", facts, now)
            if held_by_quiet_hours(self.config, rule.severity, now, facts.utc_offset_min):
                alert.state = "suppressed"
                alert.note = "quiet hours"
                self.metrics.held_back.labels("quiet_hours").inc()
                log.info(
                    "alert %s (%s) held back: quiet hours, severity %s", alert.id, rule.name, rule.severity
                )
            else:
                levels = self.planner.levels(rule)
                alert.escalation_level = levels[0] if levels else 0
                self.planner.plan(session, alert, level=alert.escalation_level, now=now)
                if escalates(self.config, rule.severity) and len(levels) > 1:
                    alert.next_escalation_at = now + timedelta(seconds=self.config.escalation.after_s)
        session.add(AlertTrigger(rule=rule.name, event_id=facts.event_id, alert_id=alert.id, created_at=now))

    def _new_alert(
        self, session: Session, rule: Rule, key: str, kind: str, facts: EventFacts, now: datetime
    ) -> Alert:
        alert = Alert(
            created_at=now,
            rule=rule.name,
            severity=rule.severity,
            kind=kind,
            group_key=key,
            state="held" if kind == "summary" else "pending",
            event_id=facts.event_id,
            last_event_id=facts.event_id,
            event_count=1,
            device_id=facts.device_id,
            category=facts.category,
            species=facts.species,
            max_count=max(facts.count, 1),
            max_confidence=facts.confidence,
            first_seen_at=facts.started_at,
            last_seen_at=facts.started_at,
            utc_offset_min=facts.utc_offset_min,
            due_at=now + timedelta(seconds=self.config.flood.group_window_s) if kind == "summary" else None,
            deliveries=[],  # a new alert has none: saves a lazy load when its deliveries are planned
        )
        session.add(alert)
        session.flush()  # the id makes the acknowledgement code, which the message body carries
        self.metrics.alerts.labels(rule.name, kind).inc()
        return alert

    def _fold_into_summary(
        self, session: Session, rule: Rule, key: str, facts: EventFacts, now: datetime
    ) -> Alert:
        summary = session.scalars(
            select(Alert)
            .where(Alert.group_key == key, Alert.kind == "summary", Alert.state == "held")
            .order_by(Alert.id.desc())
            .limit(1)
        ).first()
        self.metrics.held_back.labels("grouped").inc()
        if summary is None:
            return self._new_alert(session, rule, key, "summary", facts, now)
        summary.event_count += 1
        summary.last_event_id = max(summary.last_event_id, facts.event_id)
        summary.max_count = max(summary.max_count, facts.count)
        summary.max_confidence = max(summary.max_confidence, facts.confidence)
        summary.first_seen_at = min(summary.first_seen_at, facts.started_at)
        summary.last_seen_at = max(summary.last_seen_at, facts.started_at)
        return summary
