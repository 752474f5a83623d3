"""Looks at every camera, turns the start and end of each trouble into alerts in the durable outbox
(the sender delivers them like species alerts: SMS or the log, retries, hourly caps), and remembers
what it told in ``device_conditions``.

* a trouble that starts alerts once, unless the same trouble on that camera alerted within the cooldown;
* an offline camera that reports again is announced ("back"), when its silence was;
* many cameras going silent in one look (a storm: the station lost its radio link, not 50 thefts) are
  one grouped message, and so is their return.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from yaguar.storage.models import Device, Heartbeat, Media

from .config import AlertsConfig
from .deliveries import DeliveryPlanner, refresh_state
from .device_messages import DeviceNotice, render
from .device_models import DeviceCondition
from .device_rules import CONDITIONS, DeviceFacts, troubles
from .metrics import AlertMetrics
from .models import Alert, Delivery
from .segments import count_segments

log = logging.getLogger(__name__)


@dataclass
class _Change:
    facts: DeviceFacts
    row: DeviceCondition


class DeviceWatch:
    def __init__(
        self, config: AlertsConfig, planner: DeliveryPlanner, metrics: AlertMetrics, public_url: str
    ) -> None:
        self.config = config
        self.rules = config.devices
        self.planner = planner
        self.metrics = metrics
        self.public_url = public_url.rstrip("/")

    def check(self, session: Session, now: datetime) -> list[Alert]:
        """One look at every camera; returns the alerts written (in the caller's transaction)."""
        state = {(r.device_id, r.condition): r for r in session.scalars(select(DeviceCondition))}
        went_offline: list[_Change] = []
        came_back: list[_Change] = []
        written: list[Alert] = []
        for facts in self._facts(session):
            found = troubles(self.rules, facts, now)
            for condition in CONDITIONS:
                row = state.get((facts.device_id, condition))
                if condition in found:
                    value = found[condition]
                    if row is None:
                        row = DeviceCondition(device_id=facts.device_id, condition=condition, active=False)
                        session.add(row)
                    if row.active:
                        row.value = value
                        continue
                    since = facts.last_seen if condition == "offline" and facts.last_seen else now
                    row.active, row.since, row.value, row.told, row.cleared_at = (
                        True,
                        since,
                        value,
                        False,
                        None,
                    )
                    if row.alerted_at is not None and now - row.alerted_at < timedelta(
                        seconds=self.rules.cooldown_s
                    ):
                        self.metrics.held_back.labels("device_cooldown").inc()
                        log.info("%s: %s again within the cooldown: not alerted", facts.device_id, condition)
                        continue
                    if condition == "offline":
                        went_offline.append(_Change(facts, row))
                    else:
                        written.append(self._alert(session, condition, [_Change(facts, row)], now))
                elif row is not None and row.active:
                    row.active, row.cleared_at = False, now
                    log.info("%s: %s is over", facts.device_id, condition)
                    if condition == "offline" and row.told and self.rules.back_online:
                        came_back.append(_Change(facts, row))
        written += self._grouped(session, "offline", went_offline, now)
        written += self._grouped(session, "back", came_back, now)
        return written

    def _grouped(self, session: Session, kind: str, changes: list[_Change], now: datetime) -> list[Alert]:
        if len(changes) >= self.rules.storm_min_cameras:
            log.warning("%d cameras %s at once: one grouped message", len(changes), kind)
            return [self._alert(session, kind, changes, now, storm=True)]
        return [self._alert(session, kind, [change], now) for change in changes]

    def _alert(
        self, session: Session, kind: str, changes: list[_Change], now: datetime, storm: bool = False
    ) -> Alert:
        first = changes[0]
        if kind != "back":
            for change in changes:
                change.row.told, change.row.alerted_at = True, now
        value: float | None
        if kind == "back":  # the notice tells how long each was silent: from when last heard to now
            since, value = now, (now - first.row.since).total_seconds()
        else:
            since, value = first.row.since, first.row.value
        notice = DeviceNotice(
            kind=f"storm_{kind}" if storm else kind,
            cameras=[c.facts.name for c in changes],
            since=since,
            utc_offset_min=first.facts.utc_offset_min,
            value=value,
            link=f"{self.public_url}/cameras" + ("" if storm else f"/{first.facts.device_id}"),
        )
        alert = Alert(
            created_at=now,
            rule=f"device-{kind}",
            severity=self.rules.severity,
            kind="first",
            group_key=f"device|{kind}|{'storm' if storm else first.facts.device_id}",
            state="pending",
            event_id=None,
            last_event_id=0,
            event_count=len(changes),
            device_id="*" if storm else first.facts.device_id,
            category="device",
            species=None,
            max_count=len(changes),
            max_confidence=0.0,
            first_seen_at=since,
            last_seen_at=now,
            utc_offset_min=first.facts.utc_offset_min,
            note=", ".join(c.facts.device_id for c in changes)[:200] if storm else None,
            deliveries=[],
        )
        session.add(alert)
        session.flush()
        self._deliveries(session, alert, notice, now)
        self.metrics.alerts.labels(alert.rule, "storm" if storm else "first").inc()
        log.warning("device alert %s (%s): %s", alert.id, alert.rule, render(notice, "en"))
        return alert

    def _deliveries(self, session: Session, alert: Alert, notice: DeviceNotice, now: datetime) -> None:
        unicode = self.config.sms_unicode()
        sms_channel = self.config.sms_route()[0]  # the sender passes it on when that channel is down
        added = []
        if "sms" in self.rules.channels:
            wanted = set(self.rules.recipients)
            for person in self.config.recipients:
                if person.escalation_level != 0 or (wanted and person.name not in wanted):
                    continue
                body = render(notice, person.language, unicode)
                delivery = Delivery(
                    channel=sms_channel,
                    recipient=person.name,
                    address=person.phone,
                    language=person.language,
                    body=body,
                    segments=count_segments(body).segments,
                    next_attempt_at=now,
                )
                if self.planner.over_cap(session, person.name, now):
                    delivery.state, delivery.last_error = "capped", "per-recipient hourly cap reached"
                    self.metrics.held_back.labels("capped").inc()
                added.append(delivery)
        if "log" in self.rules.channels:
            added.append(
                Delivery(channel="log", address="log", body=render(notice, "en"), next_attempt_at=now)
            )
        for delivery in added:
            delivery.created_at = now
            delivery.alert = alert
            session.add(delivery)
        refresh_state(alert)

    def _facts(self, session: Session) -> list[DeviceFacts]:
        facts = []
        for device in session.scalars(select(Device).where(Device.revoked.is_(False)).order_by(Device.id)):
            beat = session.execute(
                select(Heartbeat.sent_at, Heartbeat.received_at)
                .where(Heartbeat.device_id == device.id)
                .order_by(Heartbeat.received_at.desc())
                .limit(1)
            ).first()
            offset = session.scalar(
                select(Media.utc_offset_min)
                .where(Media.device_id == device.id)
                .order_by(Media.captured_at.desc())
                .limit(1)
            )
            facts.append(
                DeviceFacts(
                    device_id=device.id,
                    name=device.name or device.id,
                    last_seen=device.last_seen,
                    status=device.status,
                    status_at=device.status_at,
                    heartbeat=device.last_heartbeat or {},
                    clock_drift_s=(beat.sent_at - beat.received_at).total_seconds() if beat else None,
                    utc_offset_min=offset or 0,
                )
            )
        return facts


Clock = Callable[[], datetime]
