"""What a channel is to the sender: send one delivery, and answer for one whose fate is unknown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

# sent: the provider took it. retry: it surely did not (429, 5xx, refused connection): try again later.
# failed: it never will (bad number). unknown: the request may have created a message; ask, never resend.
Outcome = Literal["sent", "retry", "failed", "unknown"]
# What asking about an unknown delivery can tell: absent means the provider has no such message.
ReconcileOutcome = Literal["sent", "failed", "absent", "unknown"]


@dataclass(frozen=True)
class DeliveryView:
    """A delivery copied out of its session, so a send can await without holding database objects."""

    id: int
    alert_id: int
    channel: str
    address: str
    body: str
    attempts: int
    claimed_at: datetime | None
    provider_sid: str | None


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider_sid: str | None = None
    provider_status: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ReconcileResult:
    outcome: ReconcileOutcome
    provider_sid: str | None = None
    provider_status: str | None = None
    error: str | None = None


class Channel(Protocol):
    name: str

    async def send(self, delivery: DeliveryView) -> SendResult: ...

    async def reconcile(self, delivery: DeliveryView) -> ReconcileResult: ...

    async def close(self) -> None: ...
