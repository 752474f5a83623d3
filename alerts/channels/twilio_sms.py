"""SMS through Twilio with the library's async client.

``RebasedHttpClient`` is the library's ``AsyncTwilioHttpClient`` with two changes: every URL the library
builds (``https://api.twilio.com/...``) is re-rooted at ``api_base_url`` (tests point it at a local fake;
any host that is not Twilio's is refused, so a wrong URL cannot leak credentials), and timeouts are split
so a refused connection (nothing sent: safe to retry) is told apart from a request that got no answer
(the message may exist: 'unknown').

Twilio's message creation has no idempotency key, so an ambiguous failure is never retried blindly:
``reconcile`` asks Twilio for the message, by its SID when known, else by listing messages to the number
since the attempt and matching the body (each body carries its alert's acknowledgement code).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from yaguar.storage.base import utcnow

from ..config import TwilioConfig
from .base import DeliveryView, ReconcileOutcome, ReconcileResult, SendResult

log = logging.getLogger(__name__)

FAILED_STATUSES = frozenset({"failed", "undelivered", "canceled"})


class RebasedHttpClient(AsyncTwilioHttpClient):
    def __init__(self, base_url: str, timeout_s: float) -> None:
        # No pooled session yet: an aiohttp session must be made inside the loop that uses it.
        super().__init__(pool_connections=False, timeout=timeout_s)
        base = urlsplit(base_url)
        self.base_scheme, self.base_netloc = base.scheme, base.netloc
        self.timeouts = aiohttp.ClientTimeout(
            total=None, sock_connect=min(timeout_s, 5.0), sock_read=timeout_s
        )
        self._pool: aiohttp.ClientSession | None = None

    def rebase(self, url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host != "twilio.com" and not host.endswith(".twilio.com"):
            raise ValueError(f"refusing to send Twilio credentials to {host!r}")
        return urlunsplit((self.base_scheme, self.base_netloc, parts.path, parts.query, parts.fragment))

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if self._pool is None or self._pool.closed:
            self._pool = aiohttp.ClientSession(timeout=self.timeouts)
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = aiohttp.encode_basic_auth(auth[0], auth[1])
        kwargs: dict[str, Any] = {
            "method": method.upper(),
            "url": self.rebase(url),
            "params": params,
            "data": data,
            "headers": headers,
            "allow_redirects": allow_redirects,
        }
        # One line, at debug level: the library's own request log writes a dozen INFO lines (every header)
        # for each SMS into the station's journal.
        async with self._pool.request(**kwargs) as response:
            text = await response.text()
            log.debug(
                "twilio %s %s: HTTP %s", kwargs["method"], urlsplit(kwargs["url"]).path, response.status
            )
            return Response(response.status, text, response.headers)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


class TwilioSmsChannel:
    name = "twilio"

    def __init__(self, config: TwilioConfig, auth_token: str, status_callback: str | None = None) -> None:
        self.config = config
        self.http = RebasedHttpClient(config.api_base_url, config.request_timeout_s)
        self.client = Client(config.account_sid, auth_token, http_client=self.http)
        self.status_callback = status_callback

    def _sender_args(self) -> dict[str, str]:
        if self.config.messaging_service_sid:
            return {"messaging_service_sid": self.config.messaging_service_sid}
        return {"from_": self.config.from_number or ""}

    async def send(self, delivery: DeliveryView) -> SendResult:
        extra: dict[str, Any] = self._sender_args()
        if self.status_callback:
            extra["status_callback"] = f"{self.status_callback}?d={delivery.id}"
        try:
            # Guard against a server that trickles bytes forever: past twice the timeout it is 'unknown'.
            message = await asyncio.wait_for(
                self.client.messages.create_async(
                    to=delivery.address,
                    body=delivery.body,
                    validity_period=self.config.validity_period_s,
                    **extra,
                ),
                timeout=2 * self.config.request_timeout_s + 1,
            )
        except TwilioRestException as exc:
            reason = f"twilio {exc.status} code {exc.code}: {exc.msg}"[:300]
            if exc.status == 429 or exc.status >= 500:
                return SendResult("retry", error=reason)
            return SendResult("failed", error=reason)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            return SendResult("retry", error=f"twilio unreachable: {exc}"[:300])  # nothing was sent
        except (TimeoutError, aiohttp.ClientError) as exc:
            return SendResult("unknown", error=f"no answer from twilio: {type(exc).__name__} {exc}"[:300])
        return SendResult("sent", provider_sid=message.sid, provider_status=str(message.status))

    async def reconcile(self, delivery: DeliveryView) -> ReconcileResult:
        try:
            if delivery.provider_sid:
                message = await self.client.messages(delivery.provider_sid).fetch_async()
                return self._result(message)
            since = (delivery.claimed_at or utcnow()) - timedelta(days=1)
            page = await asyncio.wait_for(
                self.client.messages.page_async(
                    to=delivery.address, date_sent_after=since, page_size=100, **self._list_args()
                ),
                timeout=2 * self.config.request_timeout_s + 1,
            )
        except TwilioRestException as exc:
            if exc.status == 404:
                return ReconcileResult("absent", error="twilio: no such message")
            return ReconcileResult("unknown", error=f"twilio {exc.status}: {exc.msg}"[:300])
        except (TimeoutError, aiohttp.ClientError) as exc:
            return ReconcileResult("unknown", error=f"twilio: {type(exc).__name__} {exc}"[:300])
        for message in page:
            # A trial account prefixes the body, so match on containment; the ack code makes it unique.
            if message.body and delivery.body in message.body:
                return self._result(message)
        return ReconcileResult("absent")

    def _list_args(self) -> dict[str, str]:
        return {"from_": self.config.from_number} if self.config.from_number else {}

    @staticmethod
    def _result(message: Any) -> ReconcileResult:
        status = str(message.status)
        outcome: ReconcileOutcome = "failed" if status in FAILED_STATUSES else "sent"
        return ReconcileResult(outcome, provider_sid=message.sid, provider_status=status)

    async def close(self) -> None:
        await self.http.close()
