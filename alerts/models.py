"""Outbox tables: an alert (what happened, to whom it escalates, whether a ranger acknowledged it), the
triggers that fed it (one per rule and event, so an event updated ten times alerts once), and one
delivery per recipient and channel, which is what the sender works through.

Delivery states: ``pending`` (due at ``next_attempt_at``) -> ``sending`` (a request may be on the wire)
-> ``sent`` | ``failed`` | ``unknown`` (the request may or may not have created a message; only asking
the provider settles it). ``capped``: dropped by the per-recipient hourly cap. ``passed``: its channel was
down, so a new delivery on the next channel took over (nothing was sent on this one). ``merged``: stale
after an outage, replaced by one summary (``backlog.py``).

Alert states: ``held`` (a summary still collecting), ``suppressed`` (quiet hours), or the state of its
deliveries taken together (``pending``, ``sending``, ``unknown``, ``sent``, ``failed``), or ``merged``
when every delivery was merged into a backlog summary.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from yaguar.storage.base import Base, UTCDateTime, utcnow

from .rules import ack_code as code_for

ALERT_STATES = ("held", "suppressed", "pending", "sending", "unknown", "sent", "failed", "merged")
DELIVERY_STATES = ("pending", "sending", "sent", "failed", "unknown", "capped", "passed", "merged")
# Delivery rows that stand for no message of their own (not counted by the cap or the alert's state).
NOT_A_MESSAGE = frozenset({"capped", "passed", "merged"})


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_group_created", "group_key", "created_at"),
        Index("ix_alerts_state_due", "state", "due_at"),
        Index("ix_alerts_next_escalation", "next_escalation_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    rule: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(8), doc="first: sent at once; summary: what followed it")
    group_key: Mapped[str] = mapped_column(String(240), doc="rule|camera|species: the cooldown key")
    state: Mapped[str] = mapped_column(String(12), default="pending")
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("events.id"), index=True, doc="first event; none for a device alert (camera offline...)"
    )
    last_event_id: Mapped[int] = mapped_column(Integer)
    event_count: Mapped[int] = mapped_column(Integer, default=1)
    device_id: Mapped[str] = mapped_column(String(63))
    category: Mapped[str] = mapped_column(String(16))
    species: Mapped[str | None] = mapped_column(String(120))
    max_count: Mapped[int] = mapped_column(Integer, default=1)
    max_confidence: Mapped[float] = mapped_column(Float, default=0.0)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    utc_offset_min: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, doc="a held summary is released then")
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acked_by: Mapped[str | None] = mapped_column(String(40))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(200), doc="why suppressed, why failed")

    deliveries: Mapped[list[Delivery]] = relationship(back_populates="alert", order_by="Delivery.id")

    @property
    def ack_code(self) -> str:
        """What a ranger replies after OK: the id in base 32 with a check character (``rules.ack_code``)."""
        return code_for(self.id)


class AlertTrigger(Base):
    """One (rule, event) that matched: the guard that makes re-evaluating an updated event harmless."""

    __tablename__ = "alert_triggers"
    __table_args__ = (UniqueConstraint("rule", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Delivery(Base):
    __tablename__ = "alert_deliveries"
    __table_args__ = (
        Index("ix_alert_deliveries_state_next", "state", "next_attempt_at"),
        Index("ix_alert_deliveries_recipient_created", "recipient", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    channel: Mapped[str] = mapped_column(String(12), doc="twilio, gsm, webhook or log")
    recipient: Mapped[str | None] = mapped_column(String(40), doc="recipient name; none for a webhook")
    address: Mapped[str] = mapped_column(String(300), doc="phone number or URL")
    language: Mapped[str] = mapped_column(String(2), default="es")
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    body: Mapped[str] = mapped_column(Text)
    segments: Mapped[int] = mapped_column(Integer, default=1, doc="SMS segments the body costs")
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, doc="when the last attempt began")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    provider_status: Mapped[str | None] = mapped_column(String(16), doc="queued, delivered, undelivered...")
    last_error: Mapped[str | None] = mapped_column(String(300))

    alert: Mapped[Alert] = relationship(back_populates="deliveries")
