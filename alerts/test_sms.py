"""A test SMS, so an installer can prove the path in the field: sent through the SMS channels in their
order (or one named channel) until one accepts it, outside the outbox (nothing to acknowledge, nothing
to retry later), saying what each channel answered."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from .channels.base import Channel, DeliveryView
from .config import E164, AlertsConfig
from .messages import render_test

TEST_DELIVERY_ID = 0  # not an outbox row: the modem's record of it is the oldest, dropped first


@dataclass(frozen=True)
class TestAttempt:
    channel: str
    outcome: str  # sent, retry, failed, unknown, or "not configured"
    detail: str


class TestSmsError(ValueError):
    """The request itself is wrong (a bad number, a channel that is not configured). ``msgid`` and
    ``params`` let the dashboard say it in the reader's language (the msgid is in its catalogs)."""

    def __init__(self, msgid: str, **params: str) -> None:
        self.msgid, self.params = msgid, params
        super().__init__(msgid % params)


def check_request(config: AlertsConfig, number: str, channel: str | None) -> list[str]:
    """The channels to try, in order; raises TestSmsError with a plain reason for bad input."""
    if not re.match(E164, number):
        raise TestSmsError(
            "%(number)s is not a phone number in E.164 form (+573001234567)", number=repr(number[:30])
        )
    route = config.sms_route()
    if channel is None:
        return route
    if channel not in route:
        raise TestSmsError(
            "the SMS channel %(channel)s is not configured (configured: %(configured)s)",
            channel=repr(channel),
            configured=", ".join(route),
        )
    return [channel]


async def send_test_sms(
    config: AlertsConfig, channels: dict[str, Channel], number: str, station: str, channel: str | None = None
) -> list[TestAttempt]:
    """Try each channel in turn until one accepts the message; every answer is returned."""
    route = check_request(config, number, channel)
    person = next((r for r in config.recipients if r.phone == number), None)
    lang = person.language if person else "es"
    attempts: list[TestAttempt] = []
    for name in route:
        found = channels.get(name)
        if found is None:
            attempts.append(TestAttempt(name, "not configured", ""))
            continue
        body = render_test(lang, station, name, datetime.now(UTC))
        view = DeliveryView(TEST_DELIVERY_ID, 0, name, number, body, 1, None, None)
        result = await found.send(view)
        attempts.append(TestAttempt(name, result.outcome, result.error or result.provider_sid or ""))
        if result.outcome in ("sent", "unknown"):  # unknown: it may have gone; a second one could too
            break
    return attempts
