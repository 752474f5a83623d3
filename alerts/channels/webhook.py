"""The webhook channel: the alert as JSON in a POST. Every attempt of one delivery carries the same
``Idempotency-Key`` header, so after a timeout it is safe to send again: the receiver drops repeats.
Webhooks are therefore never left 'unknown'."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from .base import DeliveryView, ReconcileResult, SendResult

log = logging.getLogger(__name__)


class WebhookChannel:
    name = "webhook"

    def __init__(self, timeout_s: float) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def send(self, delivery: DeliveryView) -> SendResult:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": f"yaguar-delivery-{delivery.id}",
            "User-Agent": "yaguar-station",
        }
        try:
            async with self.session().post(
                delivery.address, data=delivery.body.encode(), headers=headers
            ) as response:
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            return SendResult("retry", error=f"webhook: {type(exc).__name__}: {exc}"[:300])
        if 200 <= status < 300:
            return SendResult("sent", provider_status=str(status))
        if status == 429 or status >= 500:
            return SendResult("retry", error=f"webhook answered {status}")
        return SendResult("failed", error=f"webhook answered {status}")

    async def reconcile(self, delivery: DeliveryView) -> ReconcileResult:
        # Resending is safe (idempotency key), so an interrupted attempt simply counts as absent.
        return ReconcileResult("absent")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            await asyncio.sleep(0)
