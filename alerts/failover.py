"""Which SMS channel a message goes to when one is down.

A channel is down after an attempt that surely sent nothing (Twilio unreachable or 5xx, a modem absent,
locked or not registered), for ``hold_s``; the modem's watcher also marks it from the modem's state. A
message on a down channel is passed to the next channel in ``sms_channels`` that is not down (the order
wraps, so a message waiting on the modem goes back to Twilio when Twilio returns). Passing only ever
follows an answer that nothing was sent, so one message never goes out on two channels; an escalation
with ``escalation.all_channels`` is the one case that sends on each on purpose.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class ChannelHealth:
    def __init__(self, route: list[str], hold_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.route = route
        self.hold_s = hold_s
        self.clock = clock
        self._down_until: dict[str, float] = {}
        self._reason: dict[str, str] = {}

    def mark_down(self, channel: str, reason: str) -> None:
        if channel not in self.route:
            return
        if not self.is_down(channel):
            log.warning("alerts: SMS channel %s is down: %s", channel, reason)
        self._down_until[channel] = self.clock() + self.hold_s
        self._reason[channel] = reason

    def mark_up(self, channel: str) -> bool:
        """Record a channel that works; True when it was down until now (its backlog can go)."""
        was_down = self._down_until.pop(channel, None) is not None
        self._reason.pop(channel, None)
        if was_down:
            log.warning("alerts: SMS channel %s works again", channel)
        return was_down

    def is_down(self, channel: str) -> bool:
        until = self._down_until.get(channel)
        return until is not None and until > self.clock()

    def reason(self, channel: str) -> str:
        return self._reason.get(channel, "")

    def skip(self, channel: str) -> bool:
        """Don't even try ``channel``: it is down and another channel of the route is not."""
        return self.is_down(channel) and any(not self.is_down(c) for c in self.route if c != channel)

    def next_channel(self, current: str, excluded: set[str]) -> str | None:
        """The first channel after ``current`` (wrapping) that is not down and not in ``excluded``."""
        if current not in self.route:
            return None
        start = self.route.index(current)
        for step in range(1, len(self.route)):
            candidate = self.route[(start + step) % len(self.route)]
            if candidate not in excluded and not self.is_down(candidate):
                return candidate
        return None

    def as_dict(self) -> dict[str, dict[str, object]]:
        return {c: {"down": self.is_down(c), "reason": self.reason(c) or None} for c in self.route}
