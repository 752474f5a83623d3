"""What a channel's answer does to a delivery: sent, retried with backoff, passed to the next channel,
left unknown until the provider is asked, or failed; and what the provider's reply to that question
does (``reconcile``). The sender (``sender.py``) collects the answers; one pass writes them here.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .channels.base import DeliveryView, ReconcileResult, SendResult
from .config import SenderConfig
from .deliveries import refresh_state
from .failover import ChannelHealth
from .metrics import AlertMetrics
from .models import Alert, Delivery

log = logging.getLogger(__name__)

# Channels whose "absent" is final: nothing can still be on its way, so resending at once is safe (the
# modem's send record is written before the modem is asked to send).
RESEND_AT_ONCE = frozenset({"log", "webhook", "gsm"})


class Outcomes:
    def __init__(
        self,
        cfg: SenderConfig,
        route: list[str],
        health: ChannelHealth,
        metrics: AlertMetrics,
        wake: Callable[[], None],
    ) -> None:
        self.cfg = cfg
        self.route = route
        self.health = health
        self.metrics = metrics
        self.wake = wake

    def apply(
        self,
        session: Session,
        results: list[tuple[DeliveryView, SendResult | ReconcileResult]],
        now: datetime,
        claim_time: Callable[[], datetime],
    ) -> int:
        """Write the answers of one pass; ``claim_time`` gives the clock claims are aged by."""
        if not results:
            return 0
        # One query for all of them (with their alerts and sibling deliveries), not three per answer.
        loaded = session.scalars(
            select(Delivery)
            .options(selectinload(Delivery.alert).selectinload(Alert.deliveries))
            .where(Delivery.id.in_({view.id for view, _ in results}))
        ).all()
        by_id = {d.id: d for d in loaded}
        for view, result in results:
            delivery = by_id.get(view.id)
            if delivery is None:
                continue
            if isinstance(result, SendResult):
                self.record_send(session, delivery, result, now)
            else:
                self.record_reconcile(delivery, result, now, claim_time())
            refresh_state(delivery.alert)
        return len(results)

    def _pass_on(self, session: Session, delivery: Delivery, result: SendResult, now: datetime) -> bool:
        """Hand an SMS that surely was not sent to the next channel; False when there is none now."""
        if delivery.recipient is None or delivery.channel not in self.route:
            return False
        # Channels already holding this message for this person (an escalation on every channel has one
        # per channel); a failed channel is not tried again for it.
        taken = {
            d.channel
            for d in delivery.alert.deliveries
            if d.recipient == delivery.recipient
            and d.escalation_level == delivery.escalation_level
            and d.id != delivery.id
            and (d.state != "passed" or result.outcome == "failed")
        }
        target = self.health.next_channel(delivery.channel, taken | {delivery.channel})
        if target is None:
            return False
        successor = Delivery(
            channel=target,
            recipient=delivery.recipient,
            address=delivery.address,
            language=delivery.language,
            escalation_level=delivery.escalation_level,
            body=delivery.body,
            segments=delivery.segments,
            next_attempt_at=now,
            created_at=now,
        )
        successor.alert = delivery.alert
        session.add(successor)
        delivery.state = "passed"
        delivery.last_error = f"{result.error}; passed to {target}"[:300]
        self.metrics.failovers.labels(delivery.channel, target).inc()
        log.warning("alert delivery %s: %s; passed to %s", delivery.id, result.error, target)
        self.wake()
        return True

    def record_send(self, session: Session, delivery: Delivery, result: SendResult, now: datetime) -> None:
        delivery.last_error = result.error
        if result.outcome in ("retry", "failed") and self._pass_on(session, delivery, result, now):
            return
        if result.outcome == "sent":
            self._mark_sent(delivery, result.provider_sid, result.provider_status, now)
        elif result.outcome == "retry" and (
            delivery.attempts < self.cfg.max_attempts or self._waits_for_a_channel(delivery)
        ):
            delivery.state = "pending"
            delivery.next_attempt_at = now + timedelta(seconds=self.backoff(delivery.attempts))
            log.info("alert delivery %s: %s; retry %s", delivery.id, result.error, delivery.attempts + 1)
        elif result.outcome == "unknown":
            delivery.state = "unknown"
            delivery.next_attempt_at = now + timedelta(seconds=self.cfg.reconcile_after_s)
            log.warning("alert delivery %s is unknown (%s): will ask the provider", delivery.id, result.error)
        else:
            delivery.state = "failed"
            log.error(
                "alert delivery %s failed after %s attempts: %s", delivery.id, delivery.attempts, result.error
            )

    def _waits_for_a_channel(self, delivery: Delivery) -> bool:
        """An SMS whose every channel is down waits for one to come back rather than failing: a link
        can be down for days, and a stale low-severity one is merged into a summary meanwhile."""
        return delivery.recipient is not None and all(self.health.is_down(c) for c in self.route)

    def _mark_sent(self, delivery: Delivery, sid: str | None, status: str | None, now: datetime) -> None:
        delivery.state = "sent"
        delivery.sent_at = now
        delivery.provider_sid = sid or delivery.provider_sid
        delivery.provider_status = status
        latency = (now - delivery.alert.created_at).total_seconds()
        self.metrics.send_latency.labels(delivery.channel).observe(max(latency, 0.0))

    def backoff(self, attempts: int) -> float:
        delay = min(self.cfg.backoff_max_s, self.cfg.backoff_initial_s * 2 ** max(attempts - 1, 0))
        return delay * random.uniform(0.8, 1.2)

    def record_reconcile(
        self, delivery: Delivery, result: ReconcileResult, now: datetime, claim_now: datetime
    ) -> None:
        if delivery.state != "unknown":  # a status callback settled it meanwhile
            return
        if result.outcome == "sent":
            self._mark_sent(delivery, result.provider_sid, result.provider_status, now)
            log.info("alert delivery %s: the provider has it (%s)", delivery.id, result.provider_sid)
        elif result.outcome == "failed":
            delivery.state = "failed"
            delivery.provider_sid = result.provider_sid
            delivery.provider_status = result.provider_status
        elif result.outcome == "absent" and self._absent_long_enough(delivery, claim_now):
            delivery.state = "pending"
            delivery.next_attempt_at = now
            self.wake()  # claimable at the next pass, not at the next poll
            log.warning("alert delivery %s: the provider never got it; sending again", delivery.id)
        else:
            delivery.next_attempt_at = now + timedelta(seconds=max(self.cfg.reconcile_after_s, 1.0))
            delivery.last_error = result.error or delivery.last_error

    def _absent_long_enough(self, delivery: Delivery, now: datetime) -> bool:
        if delivery.channel in RESEND_AT_ONCE:
            return True
        claimed = delivery.claimed_at or delivery.created_at
        return now - claimed >= timedelta(seconds=self.cfg.reconcile_give_up_s)
