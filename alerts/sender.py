"""The sender: works through the outbox in its own asyncio loop.

Each pass releases summaries whose window closed, escalates unacknowledged alerts, claims due deliveries
(``pending`` -> ``sending``, committed BEFORE the request goes out) and settles ``unknown`` ones by asking
the provider. Rules that make it safe:

* a delivery is claimed in a committed transaction before its request, so after a crash it is found in
  ``sending`` and becomes ``unknown`` (``recover``), never silently pending again;
* 429, 5xx and refused connections are retried with exponential backoff (nothing was created);
* a timeout after the request went out is ``unknown``: the provider is asked (``reconcile``); only when it
  has had ``reconcile_give_up_s`` to show the message and still does not is the delivery sent again;
* an SMS whose channel is down is passed to the next channel (``failover.py``); a backlog goes out
  highest severity first, and stale low-severity messages are merged into one summary (``backlog.py``).

What each answer does to its delivery is ``outcomes.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from yaguar.storage.base import utcnow
from yaguar.storage.db import database_now

from .backlog import merge_stale
from .channels.base import Channel, DeliveryView, ReconcileResult, SendResult
from .config import SEVERITY_RANK, AlertsConfig
from .deliveries import DeliveryPlanner, refresh_state
from .failover import ChannelHealth
from .interrupted import mark_interrupted
from .metrics import AlertMetrics
from .models import Alert, Delivery
from .outcomes import Outcomes
from .rules import held_by_quiet_hours

log = logging.getLogger(__name__)

# The sender's own SQLite connection gives up on a taken write lock after this long (the station's
# default is seconds), and its loop tries again after BUSY_RETRY_S: see ``run``.
SENDER_BUSY_TIMEOUT_MS = 2
BUSY_RETRY_S = 0.002
BUSY_WARN_S = 30.0

SEVERITY_ORDER = case(SEVERITY_RANK, value=Alert.severity, else_=0)


def is_busy(exc: OperationalError) -> bool:
    text = str(exc.orig if exc.orig is not None else exc).lower()
    return "database is locked" in text or "database is busy" in text


def view_of(delivery: Delivery) -> DeliveryView:
    return DeliveryView(
        id=delivery.id,
        alert_id=delivery.alert_id,
        channel=delivery.channel,
        address=delivery.address,
        body=delivery.body,
        attempts=delivery.attempts,
        claimed_at=delivery.claimed_at,
        provider_sid=delivery.provider_sid,
    )


class Sender:
    def __init__(
        self,
        config: AlertsConfig,
        session_factory: sessionmaker[Session],
        planner: DeliveryPlanner,
        channels: dict[str, Channel],
        metrics: AlertMetrics,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.cfg = config.sender
        self.sessions = session_factory
        self.planner = planner
        self.channels = channels
        self.metrics = metrics
        self.clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._busy: set[int] = set()  # delivery ids with a send or reconcile in flight
        self._tasks: set[asyncio.Task[None]] = set()
        # Answers from the provider, written by the next pass (in its one transaction).
        self._results: list[tuple[DeliveryView, SendResult | ReconcileResult]] = []
        self.route = config.sms_route()
        self.health = ChannelHealth(self.route, config.sender.channel_down_hold_s)
        self._rank: dict[int, int] = {}  # severity of each delivery in flight
        self._backlog_due = False  # a channel came back: what waits on backoff may go now
        self.outcomes = Outcomes(self.cfg, self.route, self.health, metrics, self.wake)

    # -- waking -------------------------------------------------------------------------------------
    def wake(self) -> None:
        """Thread-safe: look at the outbox now (called after a commit that wrote alerts)."""
        loop, event = self._loop, self._wake
        if loop is None or event is None:
            return
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop is closed (sender stopped): the outbox keeps the work for later
            log.debug("alert sender is stopped; the outbox keeps the alert")

    def bind_loop(self) -> asyncio.Event:
        """Attach to the running loop (wake() then reaches it); returns the wake event."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        return self._wake

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self, stop: asyncio.Event) -> None:
        wake = self.bind_loop()
        recovered = False
        busy_since: float | None = None
        while not stop.is_set():
            wake.clear()
            try:
                if not recovered:
                    self.recover()
                    recovered = True
                await self.step()
                busy_since = None
            except OperationalError as exc:
                if not is_busy(exc):
                    log.exception("alert sender pass failed; retrying in %ss", self.cfg.poll_interval_s)
                    wake.clear()
                else:
                    # SQLite's write lock is taken: try again in a moment. Polling every few ms wins the
                    # short gaps between the pipeline's transactions, where SQLite's own busy handler
                    # (sleeps growing to 100 ms) loses them to a busy writer.
                    now = time.monotonic()
                    busy_since = busy_since or now
                    if now - busy_since > BUSY_WARN_S:
                        log.warning("alert sender: the database has been locked for %.0f s", now - busy_since)
                        busy_since = now
                    await asyncio.sleep(BUSY_RETRY_S)
                    continue
            except Exception:  # a database hiccup must not end the sender; the next pass retries
                log.exception("alert sender pass failed; retrying in %ss", self.cfg.poll_interval_s)
                wake.clear()  # no tight loop on a database that keeps failing
            waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=self.cfg.poll_interval_s, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
        await self.drain(timeout=25)
        for _ in range(int(10 / BUSY_RETRY_S)):
            try:
                self.flush()
                break
            except OperationalError as exc:
                if not is_busy(exc):
                    log.exception("could not write the last alert delivery results")
                    break
                await asyncio.sleep(BUSY_RETRY_S)
            except Exception:  # unwritten answers leave deliveries 'sending': asked about at the next start
                log.exception("could not write the last alert delivery results")
                break

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the sends and reconciliations in flight."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    # -- one pass -----------------------------------------------------------------------------------
    def recover(self) -> int:
        """At start: deliveries a stopped sender left mid-send may have reached the provider. Ask, never
        resend. On SQLite (one station) all of them; with workers on PostgreSQL only claims old enough to
        be surely dead, the rest at a later pass (``interrupted.py``)."""
        now = self.clock()
        with self.sessions.begin() as session:
            one_station = session.get_bind().dialect.name == "sqlite"
            expiry = None if one_station else self.cfg.claim_expiry_s
            claim_now = self.claim_time(session, now)
            reason = "interrupted while sending (stopped)"
            stuck = mark_interrupted(session, now, claim_now, expiry, self._busy, reason)
        if stuck:
            log.warning("%s alert deliveries were interrupted mid-send; asking the provider", len(stuck))
        return len(stuck)

    def claim_time(self, session: Session, now: datetime) -> datetime:
        """The clock claims are stamped and aged by. One station on SQLite: its own (taken after the lock
        was won: what the claim really waited). Workers on PostgreSQL: the database's, the one clock they
        all share (``interrupted.py``)."""
        if session.get_bind().dialect.name == "sqlite":
            return max(self.clock(), now)
        return database_now(session)

    def _recover_expired(self, session: Session, now: datetime) -> None:
        """Claims older than ``claim_expiry_s`` (a worker killed mid-send, a peer's or our own)."""
        reason = f"still sending {self.cfg.claim_expiry_s:.0f} s after its claim (a sender stopped)"
        claim_now = self.claim_time(session, now)
        stuck = mark_interrupted(session, now, claim_now, self.cfg.claim_expiry_s, self._busy, reason)
        if stuck:
            log.warning(
                "alert deliveries %s were left mid-send by a stopped sender; asking the provider", stuck
            )

    async def step(self) -> int:
        """Do all due work once; returns how many things were started or changed.

        Everything a pass writes (answers received since the last pass, released summaries, escalations,
        claims) goes into ONE transaction: one fsync a pass instead of one per message, which is what
        keeps latency flat when detections come in bursts."""
        now = self.clock()
        results = list(self._results)
        backlog_due, self._backlog_due = self._backlog_due, False
        with self.sessions.begin() as session:
            if backlog_due:
                self._release_backlog(session, now)
            claimed = self._claim(session, now)  # first: the new alert is why we were woken
            self._recover_expired(session, now)
            unknowns = self._due_unknowns(session, now)
            done = self.outcomes.apply(session, results, now, lambda: self.claim_time(session, now))
            planned = self._release_summaries(session, now) + self._escalate(session, now)
            planned += merge_stale(session, self.config, self.planner, self.metrics, now)
        self._forget(results)  # only once committed: a failed pass keeps the answers for the next one
        if planned:
            self.wake()  # their deliveries are due now: one more pass claims them
        for view in claimed:
            self._spawn(view.id, self._deliver(view))
        for view in unknowns:
            self._spawn(view.id, self._reconcile(view))
        return done + planned + len(claimed) + len(unknowns)

    def flush(self) -> int:
        """Write the answers received so far (at shutdown, after ``drain``)."""
        results = list(self._results)
        now = self.clock()
        with self.sessions.begin() as session:
            self.outcomes.apply(session, results, now, lambda: self.claim_time(session, now))
        self._forget(results)
        return len(results)

    def _spawn(self, delivery_id: int, work: Coroutine[Any, Any, None]) -> None:
        self._busy.add(delivery_id)
        task = asyncio.ensure_future(work)
        self._tasks.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if t.cancelled() or t.exception() is not None:
                # No answer will be applied: the delivery stays 'sending' or 'unknown' and is asked about.
                self._busy.discard(delivery_id)
                self._rank.pop(delivery_id, None)
                log.error(
                    "alert delivery %s: %s", delivery_id, "cancelled" if t.cancelled() else t.exception()
                )
            self.wake()  # an answer to write, a slot free

        task.add_done_callback(finished)

    def _forget(self, results: list[tuple[DeliveryView, SendResult | ReconcileResult]]) -> None:
        del self._results[: len(results)]  # tasks only append, so the written ones are the first
        for view, _ in results:
            self._busy.discard(view.id)
            self._rank.pop(view.id, None)

    def _release_summaries(self, session: Session, now: datetime) -> int:
        due = session.scalars(
            select(Alert)
            .where(Alert.state == "held", Alert.due_at <= now)
            .order_by(Alert.id)
            .with_for_update(skip_locked=True)
        ).all()
        for alert in due:
            if held_by_quiet_hours(self.config, alert.severity, now, alert.utc_offset_min):
                alert.state, alert.note = "suppressed", "quiet hours"
                continue
            alert.state = "pending"
            levels = self.planner.levels(self.planner.rule(alert.rule))
            self.planner.plan(session, alert, levels[0] if levels else 0, now)
            log.info("summary alert %s released: %s more events", alert.id, alert.event_count)
        return len(due)

    def _escalate(self, session: Session, now: datetime) -> int:
        due = session.scalars(
            select(Alert)
            .where(Alert.next_escalation_at <= now, Alert.acked_at.is_(None))
            .with_for_update(skip_locked=True)
        ).all()
        for alert in due:
            levels = self.planner.levels(self.planner.rule(alert.rule))
            higher = [level for level in levels if level > alert.escalation_level]
            alert.next_escalation_at = None
            if not higher:
                continue
            alert.escalation_level = higher[0]
            self.planner.plan(session, alert, higher[0], now)
            if len(higher) > 1:
                alert.next_escalation_at = now + timedelta(seconds=self.config.escalation.after_s)
            self.metrics.escalations.inc()
            log.warning("alert %s not acknowledged: escalated to level %s", alert.id, higher[0])
        return len(due)

    def _release_backlog(self, session: Session, now: datetime) -> None:
        """A channel works again: what waits on backoff is due now, so it goes out by severity."""
        session.execute(
            update(Delivery)
            .where(Delivery.state == "pending", Delivery.next_attempt_at > now)
            .values(next_attempt_at=now)
        )

    def _claim(self, session: Session, now: datetime) -> list[DeliveryView]:
        free = self.cfg.concurrency - len(self._busy)
        if free <= 0:
            return []
        rows = session.scalars(
            select(Delivery)
            .join(Delivery.alert)
            .options(selectinload(Delivery.alert).selectinload(Alert.deliveries))
            .where(Delivery.state == "pending", Delivery.next_attempt_at <= now)
            # After an outage the backlog goes out highest severity first, oldest first within one.
            .order_by(SEVERITY_ORDER.desc(), Delivery.next_attempt_at, Delivery.id)
            .limit(free + len(self._busy))
            # Several station workers on PostgreSQL never claim the same row; SQLite's BEGIN IMMEDIATE
            # already serialises passes (and renders no FOR UPDATE).
            .with_for_update(skip_locked=True, of=Delivery)
        ).all()
        claimed: list[Delivery] = []
        claimed_at = self.claim_time(session, now)
        # A lower severity waits while a higher one is in flight: on a slow link (a modem sends one SMS
        # at a time) the urgent ones are not queued behind old news.
        top = max([*self._rank.values(), *(SEVERITY_RANK[d.alert.severity] for d in rows)], default=0)
        if any(self.health.is_down(c) for c in self.route):
            # A channel is down: lower severities also wait for higher ones still in backoff, so when the
            # link returns the first message through is the most urgent one.
            top = max(top, self._top_pending(session))
        for delivery in rows:
            if delivery.id in self._busy or len(claimed) >= free:
                continue
            if SEVERITY_RANK[delivery.alert.severity] < top:
                break
            self._rank[delivery.id] = SEVERITY_RANK[delivery.alert.severity]
            delivery.state = "sending"
            delivery.attempts += 1
            delivery.claimed_at = claimed_at
            refresh_state(delivery.alert)
            claimed.append(delivery)
        session.flush()
        return [view_of(d) for d in claimed]

    @staticmethod
    def _top_pending(session: Session) -> int:
        highest = session.scalar(
            select(SEVERITY_ORDER)
            .join(Delivery.alert)
            .where(Delivery.state.in_(("pending", "sending")))
            .order_by(SEVERITY_ORDER.desc())
            .limit(1)
        )
        return int(highest or 0)

    def _due_unknowns(self, session: Session, now: datetime) -> list[DeliveryView]:
        free = self.cfg.concurrency - len(self._busy)
        if free <= 0:
            return []
        rows = session.scalars(
            select(Delivery)
            .where(Delivery.state == "unknown", Delivery.next_attempt_at <= now)
            .order_by(Delivery.id)
            .limit(free + len(self._busy))
        ).all()
        return [view_of(d) for d in rows if d.id not in self._busy][:free]

    # -- one delivery -------------------------------------------------------------------------------
    async def _deliver(self, view: DeliveryView) -> None:
        channel = self.channels.get(view.channel)
        if channel is None:
            result = SendResult("failed", error=f"channel {view.channel} is not configured")
        elif self.health.skip(view.channel):
            # Known down, and another channel is not: pass it on without a try that would only wait.
            result = SendResult("retry", error=f"{view.channel} is down: {self.health.reason(view.channel)}")
            self._results.append((view, result))
            return
        else:
            try:
                result = await channel.send(view)
            except Exception as exc:  # whatever happened, the message may have gone: ask, do not resend
                log.exception("alert delivery %s: unexpected error while sending", view.id)
                result = SendResult("unknown", error=f"{type(exc).__name__}: {exc}"[:300])
        self.metrics.attempts.labels(view.channel, result.outcome).inc()
        if result.outcome == "retry":
            self.health.mark_down(view.channel, result.error or "no answer")
        elif result.outcome == "sent" and self.health.mark_up(view.channel):
            self._backlog_due = True
        self._results.append((view, result))

    def channel_up(self, channel: str) -> None:
        """Told from outside (the modem registered again): its backlog may go now."""
        if self.health.mark_up(channel):
            self._backlog_due = True
            self.wake()

    async def _reconcile(self, view: DeliveryView) -> None:
        channel = self.channels.get(view.channel)
        if channel is None:
            result = ReconcileResult("unknown", error=f"channel {view.channel} is not configured")
        else:
            try:
                result = await channel.reconcile(view)
            except Exception as exc:
                log.exception("alert delivery %s: unexpected error while reconciling", view.id)
                result = ReconcileResult("unknown", error=f"{type(exc).__name__}: {exc}"[:300])
        self.metrics.reconciled.labels(result.outcome).inc()
        self._results.append((view, result))
