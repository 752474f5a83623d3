"""SMS through a USB GSM modem (Gammu), for stations with mobile coverage and no reliable internet.

The modem (``gsm_modem.Modem``) runs on a thread of its own; this channel gives the sender the usual
answers:

* ``sent``: the modem accepted every part (``provider_sid`` is ``gsm:`` and the parts' message
  references, which delivery reports name);
* ``retry``: the modem surely sent nothing (absent, SIM locked, not registered, refused): the sender
  passes the message to the next channel at once;
* ``unknown``: the modem failed or went silent mid-send. ``reconcile`` then reads the record the send
  wrote into the modem's memory before it started: marked sent -> sent; never written -> absent (safe to
  send again); written but not marked -> it stays unknown: it is never blindly sent twice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import gammu

from ..config import GsmConfig
from .base import DeliveryView, ReconcileResult, SendResult
from .gsm_modem import Incoming, Modem, ModemDownError, ModemLostError, ModemState, gammu_error

log = logging.getLogger(__name__)

T = TypeVar("T")
SID_PREFIX = "gsm:"
# Listing the modem's memory (replies, reports, records) is slow on a real modem: seconds, not a send's.
LIST_TIMEOUT_S = 60.0
INBOX_MAX_WAIT_S = 60.0


def sid_of(references: list[int]) -> str:
    return SID_PREFIX + ",".join(str(r) for r in references)


def references_of(sid: str | None) -> list[int]:
    if not sid or not sid.startswith(SID_PREFIX):
        return []
    return [int(r) for r in sid[len(SID_PREFIX) :].split(",") if r.isdigit()]


class GsmChannel:
    name = "gsm"

    def __init__(
        self, config: GsmConfig, pin: str | None, machine_factory: Callable[[], Any] = gammu.StateMachine
    ) -> None:
        self.config = config
        self.modem = Modem(config, pin, machine_factory)
        # One thread: Gammu's state machine must never be used from two at once.
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gsm-modem")
        self._sending = 0  # sends queued or running: the slow inbox read waits for a quiet moment
        self._inbox_read_at = time.monotonic()

    @property
    def state(self) -> ModemState:
        return self.modem.state

    async def _run(self, fn: Callable[..., T], *args: Any, timeout: float) -> T:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(self._thread, fn, *args), timeout)

    async def send(self, delivery: DeliveryView) -> SendResult:
        self._sending += 1
        try:
            return await self._send(delivery)
        finally:
            self._sending -= 1

    async def _send(self, delivery: DeliveryView) -> SendResult:
        try:
            references = await self._run(
                self.modem.send,
                delivery.id,
                delivery.address,
                delivery.body,
                timeout=self.config.send_timeout_s,
            )
        except ModemDownError as exc:
            return SendResult("retry", error=f"gsm {exc.reason}: {exc}"[:300])
        except ModemLostError as exc:
            return SendResult("unknown", error=f"gsm modem failed mid-send: {exc}"[:300])
        except TimeoutError:
            return SendResult(
                "unknown", error=f"gsm modem silent for {self.config.send_timeout_s:g} s mid-send"
            )
        except gammu.GSMError as exc:  # the record could not be written: the modem never got the message
            return SendResult("retry", error=f"gsm: {gammu_error(exc)}"[:300])
        return SendResult("sent", provider_sid=sid_of(references), provider_status="accepted")

    async def reconcile(self, delivery: DeliveryView) -> ReconcileResult:
        try:
            record = await self._run(self.modem.record_of, delivery.id, timeout=LIST_TIMEOUT_S)
        except (ModemDownError, TimeoutError, gammu.GSMError) as exc:
            return ReconcileResult("unknown", error=f"gsm: cannot read the modem's records: {exc}"[:300])
        if record is None:
            return ReconcileResult("absent")
        if record.sent:
            return ReconcileResult("sent", provider_sid=sid_of(record.references), provider_status="accepted")
        return ReconcileResult(
            "unknown", error="the station stopped while the modem was sending: it may have gone out"
        )

    async def refresh(self) -> ModemState:
        try:
            return await self._run(self.modem.refresh, timeout=self.config.send_timeout_s)
        except TimeoutError:
            self.modem.state.error = "the modem did not answer"
            return self.modem.state

    async def read_incoming(self) -> list[Incoming]:
        """Replies and delivery reports in the modem (also drops old send records). Skipped while
        alerts are going out (listing the modem's memory takes it for a second or more), but never for
        longer than INBOX_MAX_WAIT_S, so acknowledgements still arrive during a long backlog."""
        if self._sending and time.monotonic() - self._inbox_read_at < INBOX_MAX_WAIT_S:
            return []
        self._inbox_read_at = time.monotonic()
        try:
            found = await self._run(self.modem.read_incoming, timeout=LIST_TIMEOUT_S)
        except (ModemDownError, TimeoutError, gammu.GSMError) as exc:
            log.debug("gsm: inbox not read: %s", exc)
            return []
        return found

    async def forget(self, items: list[Incoming]) -> None:
        """Delete handled replies and reports from the modem."""
        places = [place for item in items for place in item.places]
        if not places:
            return
        try:
            await self._run(self.modem.forget, places, timeout=LIST_TIMEOUT_S)
        except (ModemDownError, TimeoutError, gammu.GSMError) as exc:
            log.warning("gsm: handled messages not deleted from the modem (read again later): %s", exc)

    async def send_plain(self, number: str, body: str) -> bool:
        try:
            await self._run(self.modem.send_plain, number, body, timeout=self.config.send_timeout_s)
        except (ModemDownError, TimeoutError, gammu.GSMError) as exc:
            log.warning("gsm: could not send a reply to %s: %s", number[:20], exc)
            return False
        return True

    async def close(self) -> None:
        try:
            await self._run(self.modem.disconnect, timeout=5)
        except TimeoutError:
            log.warning("gsm: the modem did not close in time")
        self._thread.shutdown(wait=False, cancel_futures=True)
