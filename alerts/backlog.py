"""Quiet links: after an outage nobody should wake up to 200 old SMS.

Low-severity messages to one person that waited longer than ``backlog.stale_after_s`` (no channel
could send them) are merged into one summary alert: "12 delayed alerts, no signal 02:10-05:40: 8
peccary, 4 person". The merged deliveries become ``merged`` (their alerts stay in the list, with the
summary named in their note). High-severity messages are never merged; the sender sends them first.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from yaguar.taxonomy import common_name

from .config import SEVERITY_RANK, AlertsConfig
from .deliveries import DeliveryPlanner, refresh_state
from .messages import CATEGORY_NAMES, render_backlog
from .metrics import AlertMetrics
from .models import Alert, Delivery
from .segments import count_segments

log = logging.getLogger(__name__)

BACKLOG_KIND = "backlog"


def what_of(alert: Alert, lang: str) -> str:
    if alert.species:
        return common_name(alert.species, lang)
    return CATEGORY_NAMES[lang].get(alert.category, alert.category)


def merge_stale(
    session: Session, config: AlertsConfig, planner: DeliveryPlanner, metrics: AlertMetrics, now: datetime
) -> int:
    """Merge each person's stale low-severity messages into one summary; returns summaries written."""
    cfg = config.backlog
    severities = [s for s, rank in SEVERITY_RANK.items() if rank <= SEVERITY_RANK[cfg.merge_max_severity]]
    stale = session.scalars(
        select(Delivery)
        .join(Delivery.alert)
        .options(selectinload(Delivery.alert).selectinload(Alert.deliveries))
        .where(
            Delivery.state == "pending",
            Delivery.recipient.is_not(None),
            Delivery.created_at <= now - timedelta(seconds=cfg.stale_after_s),
            Alert.severity.in_(severities),
            Alert.kind != BACKLOG_KIND,
        )
        .order_by(Delivery.id)
        .with_for_update(skip_locked=True, of=Delivery)
    ).all()
    by_person: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in stale:
        if delivery.channel in config.sms_route():
            by_person[delivery.recipient or ""].append(delivery)
    written = 0
    for person, deliveries in by_person.items():
        if len(deliveries) < 2:
            continue  # one old message is sent as it is
        _merge(session, config, planner, person, deliveries, now)
        metrics.merged.inc(len(deliveries))
        written += 1
    return written


def _merge(
    session: Session,
    config: AlertsConfig,
    planner: DeliveryPlanner,
    person: str,
    deliveries: list[Delivery],
    now: datetime,
) -> None:
    alerts = sorted({d.alert_id: d.alert for d in deliveries}.values(), key=lambda a: a.id)
    newest = alerts[-1]
    lang = deliveries[0].language
    counts = Counter(what_of(a, lang) for a in alerts for _ in range(max(a.event_count, 1)))
    summary = Alert(
        created_at=now,
        rule=BACKLOG_KIND,
        severity=max((a.severity for a in alerts), key=SEVERITY_RANK.__getitem__),
        kind=BACKLOG_KIND,
        group_key=f"{BACKLOG_KIND}|{person}",
        state="pending",
        event_id=newest.last_event_id,
        last_event_id=newest.last_event_id,
        event_count=sum(counts.values()),
        device_id=newest.device_id,
        category=newest.category if len({a.category for a in alerts}) == 1 else "animal",
        species=newest.species if len({a.species for a in alerts}) == 1 else None,
        max_count=max(a.max_count for a in alerts),
        max_confidence=max(a.max_confidence for a in alerts),
        first_seen_at=min(a.first_seen_at for a in alerts),
        last_seen_at=max(a.last_seen_at for a in alerts),
        utc_offset_min=newest.utc_offset_min,
        note=f"summary of alerts {', '.join(str(a.id) for a in alerts)}"[:200],
        deliveries=[],
    )
    session.add(summary)
    session.flush()  # its id makes the acknowledgement code
    body = render_backlog(
        dict(counts),
        lang,
        summary.first_seen_at,
        summary.last_seen_at,
        summary.utc_offset_min,
        planner.link(newest.last_event_id),
        summary.ack_code,
        config.sms_unicode(),
    )
    first = deliveries[0]
    summary.deliveries.append(
        Delivery(
            created_at=now,
            channel=config.sms_route()[0],
            recipient=person,
            address=first.address,
            language=lang,
            escalation_level=first.escalation_level,
            body=body,
            segments=count_segments(body).segments,
            next_attempt_at=now,
        )
    )
    refresh_state(summary)
    for delivery in deliveries:
        delivery.state = "merged"
        delivery.last_error = f"stale after an outage: merged into alert {summary.id}"
        refresh_state(delivery.alert)
    log.warning(
        "alerts: %s stale messages to %s merged into one summary (alert %s)",
        len(deliveries),
        person,
        summary.id,
    )
