"""The modem's side of the sender loop: reads its state (signal, registration, SIM) for ``/healthz`` and
metrics and to tell the sender when the GSM channel is down or back, and reads what arrived in it:
``OK <code>`` replies (answered through the modem) and delivery reports."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from .channels.gsm import GsmChannel
from .channels.gsm_modem import Incoming, ModemState
from .config import AlertsConfig
from .inbound import ReplyVerdict, handle_gsm_report, handle_reply, report_outcome
from .metrics import AlertMetrics
from .sender import Sender

log = logging.getLogger(__name__)


class ModemWatch:
    def __init__(
        self,
        channel: GsmChannel,
        config: AlertsConfig,
        sessions: sessionmaker[Session],
        metrics: AlertMetrics,
        sender: Sender,
        clock: Callable[[], datetime],
    ) -> None:
        self.channel = channel
        self.config = config
        self.sessions = sessions
        self.metrics = metrics
        self.sender = sender
        self.clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        assert self.config.gsm is not None
        loop = asyncio.get_running_loop()
        next_status = 0.0
        while not stop.is_set():
            try:
                if loop.time() >= next_status:
                    await self.check_state()
                    next_status = loop.time() + self.config.gsm.status_interval_s
                await self.read_inbox()
            except Exception:  # a database hiccup must not end the watch; the next round retries
                log.exception("gsm: reading the modem failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.gsm.inbox_interval_s)

    async def check_state(self) -> ModemState:
        state = await self.channel.refresh()
        self.metrics.gsm_present.set(1 if state.present else 0)
        self.metrics.gsm_sim_ready.set(1 if state.sim == "ready" else 0)
        self.metrics.gsm_registered.set(1 if state.registered else 0)
        self.metrics.gsm_signal.set(state.signal_percent or 0)
        if state.registered:
            self.sender.channel_up("gsm")
        else:
            self.sender.health.mark_down("gsm", state.error or f"not registered ({state.registration})")
        return state

    async def read_inbox(self) -> int:
        """Handle what arrived; each item is deleted from the modem only once handled, so a database
        that fails now loses no acknowledgement (the next read brings it again)."""
        handled: list[Incoming] = []
        items = await self.channel.read_incoming()
        try:
            for item in items:
                if item.kind == "report":
                    await self._report(item)
                else:
                    await self._reply(item)
                handled.append(item)
        finally:
            await self.channel.forget(handled)
        return len(items)

    async def _db(self, fn: Callable[[Session], Any]) -> Any:
        def run() -> Any:
            with self.sessions.begin() as session:
                return fn(session)

        return await asyncio.to_thread(run)

    async def _report(self, item: Incoming) -> None:
        status = item.status or 0
        matched = await self._db(
            lambda s: handle_gsm_report(s, item.number, item.reference or -1, status, self.clock())
        )
        self.metrics.gsm_reports.labels(report_outcome(status) if matched else "unmatched").inc()

    async def _reply(self, item: Incoming) -> None:
        verdict: ReplyVerdict = await self._db(
            lambda s: handle_reply(s, self.config, item.number, item.text, self.clock())
        )
        if verdict.outcome == "acked":
            self.metrics.acks.labels("gsm").inc()
        else:
            self.metrics.rejected.labels("gsm_inbound", verdict.outcome).inc()
        if verdict.answer and verdict.person is not None:
            await self.channel.send_plain(verdict.person.phone, verdict.answer)
