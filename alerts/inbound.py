"""What comes back from rangers and the network, whichever way it came (Twilio's webhooks or the modem):
``OK <code>`` replies that acknowledge an alert, and delivery reports that settle a delivery.

A reply counts only from a recipient's number and with a code whose check character is right; anything
else is refused with a reason (a metric and a log line), never acted on.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .config import AlertsConfig, Recipient
from .deliveries import acknowledge, refresh_state
from .messages import reply
from .models import Alert, Delivery
from .rules import parse_ack_code

log = logging.getLogger(__name__)

ACK = re.compile(r"^\s*OK\s+([0-9A-Za-z]{2,12})\s*[.!]?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ReplyVerdict:
    """``outcome``: acked, unknown_sender, not_an_ack or unknown_code; ``answer``: the text to send back."""

    outcome: str
    person: Recipient | None = None
    alert_id: int | None = None
    answer: str | None = None


def judge_reply(config: AlertsConfig, sender: str) -> Recipient | None:
    return next((r for r in config.recipients if r.phone == sender), None)


def handle_reply(
    session: Session, config: AlertsConfig, sender: str, body: str, now: datetime
) -> ReplyVerdict:
    """Acknowledge the alert an ``OK <code>`` reply names, if it came from a recipient."""
    person = judge_reply(config, sender)
    if person is None:
        log.warning("a reply from %s, who is not a recipient, was ignored", sender[:20])
        return ReplyVerdict("unknown_sender")
    match = ACK.match(body)
    if match is None:
        log.info("a reply from %s is not 'OK <code>'; ignored", person.name)
        return ReplyVerdict("not_an_ack", person)
    code = match.group(1).upper()
    alert_id = parse_ack_code(code)
    alert = session.get(Alert, alert_id) if alert_id is not None else None
    unicode = config.sms_unicode()
    if alert is None:
        log.info("%s acknowledged code %s, which matches no alert", person.name, code)
        return ReplyVerdict(
            "unknown_code", person, None, reply("unknown_code", person.language, code, unicode)
        )
    acknowledge(session, alert, person.name, now)
    log.info("alert %s acknowledged by %s", alert.id, person.name)
    return ReplyVerdict("acked", person, alert.id, reply("ack", person.language, code, unicode))


def report_outcome(status: int) -> str:
    """A GSM delivery report's TP-Status (3GPP TS 23.040 9.2.3.15): delivered, trying or failed."""
    if status < 0x20:
        return "delivered"
    if status < 0x40:
        return "trying"
    return "undelivered"


def handle_gsm_report(session: Session, number: str, reference: int, status: int, now: datetime) -> bool:
    """Apply a modem delivery report to the newest GSM delivery to ``number`` whose parts include
    ``reference`` (references wrap at 256, so the newest one is meant). False when none matches."""
    candidates = session.scalars(
        select(Delivery)
        .where(Delivery.channel == "gsm", Delivery.address == number, Delivery.provider_sid.is_not(None))
        .order_by(Delivery.id.desc())
        .limit(50)
    ).all()
    for delivery in candidates:
        references = [int(r) for r in (delivery.provider_sid or "")[4:].split(",") if r.isdigit()]
        if reference not in references:
            continue
        outcome = report_outcome(status)
        if outcome == "undelivered":
            delivery.state = "failed"
            delivery.provider_status = "undelivered"
            delivery.last_error = f"the network could not deliver it (TP-Status {status})"
        elif outcome == "delivered":
            # Multipart: delivered once every part's report said so (reports of earlier parts are kept
            # in provider_status as a count).
            status_so_far = delivery.provider_status or ""
            done = int(status_so_far[10:]) if status_so_far.startswith("delivered:") else 0
            done += 1
            delivery.provider_status = "delivered" if done >= len(references) else f"delivered:{done}"
            if delivery.state in ("unknown", "sending"):
                delivery.state, delivery.sent_at = "sent", delivery.sent_at or now
        refresh_state(delivery.alert)
        return True
    log.warning("a delivery report from %s (reference %s) matches no message we sent", number[:20], reference)
    return False
