"""The log channel: the message goes to the station's log. The default when no Twilio credentials are
configured, so a station without an account still shows what it would have sent."""

from __future__ import annotations

import logging

from .base import DeliveryView, ReconcileResult, SendResult

log = logging.getLogger("yaguar.alerts.message")


class LogChannel:
    name = "log"

    async def send(self, delivery: DeliveryView) -> SendResult:
        log.warning("alert %s to %s: %s", delivery.alert_id, delivery.address, delivery.body)
        return SendResult("sent", provider_sid=f"log-{delivery.id}", provider_status="logged")

    async def reconcile(self, delivery: DeliveryView) -> ReconcileResult:
        # Writing a log line cannot be half done: a delivery left 'sending' by a crash was not logged.
        return ReconcileResult("absent")

    async def close(self) -> None:
        return None
