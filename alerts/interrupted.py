"""Deliveries left ``sending`` by a sender that stopped mid-send: they may have reached the provider, so
they become ``unknown`` and the provider is asked (never sent again blindly).

One station on SQLite owns every claim in its file, so at its start every ``sending`` delivery is its
predecessor's. Several workers on PostgreSQL cannot tell a dead peer's claim from a live one's at start;
there a claim counts as interrupted once it is older than ``claim_expiry_s`` (longer than any channel
takes to send), checked at every pass, so a worker killed mid-send has its messages settled by the others.
There claims are stamped and aged by the database's clock, which every worker shares: a worker whose own
clock is off neither takes a peer's live send for interrupted nor waits too long for a dead one's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .deliveries import refresh_state
from .models import Delivery


def mark_interrupted(
    session: Session, now: datetime, claim_now: datetime, expiry_s: float | None, busy: set[int], reason: str
) -> list[int]:
    """Turn ``sending`` deliveries claimed before ``claim_now - expiry_s`` (all of them: ``expiry_s=None``)
    and not in flight here (``busy``) into ``unknown``, due to be asked about at ``now``. ``claim_now`` is
    the clock claims are stamped with (the sender's ``claim_time``). Returns their ids."""
    query = select(Delivery).where(Delivery.state == "sending")
    if expiry_s is not None:
        cutoff = claim_now - timedelta(seconds=expiry_s)
        query = query.where(or_(Delivery.claimed_at.is_(None), Delivery.claimed_at < cutoff))
    stuck = [
        d for d in session.scalars(query.with_for_update(skip_locked=True, of=Delivery)) if d.id not in busy
    ]
    for delivery in stuck:
        delivery.state = "unknown"
        delivery.next_attempt_at = now
        delivery.last_error = reason
        refresh_state(delivery.alert)
    return [d.id for d in stuck]
