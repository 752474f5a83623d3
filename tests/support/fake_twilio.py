"""A fake Twilio REST API on 127.0.0.1: the one fake the alert tests allow (the real host is never
contacted). It records every request, answers like Twilio (a Message resource as JSON, 201), and on
demand answers 429 or 500, or hangs. It runs on its own thread and loop, so sync tests, async tests,
subprocesses and the benchmark use it the same way.

Behaviours for message creation, consumed one per POST (then "ok"):
  ok            create the message, answer 201
  429 / 500     create nothing, answer the error as Twilio does (retry later)
  400           create nothing, answer "invalid To number" (never retried)
  hang          create the message, then never answer (the sender cannot know it was created)
  hang_before   never answer and create nothing

``down(behaviour)`` makes every POST answer that way until ``up()``: Twilio down on demand.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
FROM_NUMBER = "+15005550006"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    received_at: float  # time.time(), comparable across processes
    status: int = 0
    sid: str | None = None


@dataclass
class FakeTwilio:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    requests: list[Recorded] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._plan: deque[str] = deque()
        self._down: str | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.port = 0

    # -- control ------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def plan(self, *behaviours: str) -> None:
        with self._lock:
            self._plan.extend(behaviours)

    def down(self, behaviour: str = "500") -> None:
        """Answer every message creation with ``behaviour`` (e.g. 500, 429) until ``up()``."""
        with self._lock:
            self._down = behaviour

    def up(self) -> None:
        with self._lock:
            self._down = None

    def creates(self) -> list[Recorded]:
        """POSTs to Messages.json, in order of arrival."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path.endswith("/Messages.json")]

    def accepted_bodies(self) -> list[str]:
        with self._lock:
            return [m["body"] for m in self.messages]

    def sign(self, url: str, params: dict[str, str]) -> str:
        return RequestValidator(self.auth_token).compute_signature(url, params)

    def __enter__(self) -> FakeTwilio:
        self._thread = threading.Thread(target=self._serve, name="fake-twilio", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake Twilio server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop_loop)
        if self._thread is not None:
            self._thread.join(10)

    # -- server -------------------------------------------------------------------------------------
    def _stop_loop(self) -> None:
        assert self._release is not None and self._loop is not None
        self._release.set()
        self._loop.stop()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._release = asyncio.Event()
        app = web.Application()
        base = f"/2010-04-01/Accounts/{self.account_sid}"
        app.router.add_post(f"{base}/Messages.json", self._create)
        app.router.add_get(f"{base}/Messages.json", self._list)
        app.router.add_get(f"{base}/Messages/{{sid}}.json", self._fetch)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = runner.addresses[0][1]
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def _authorised(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    async def _record(self, request: web.Request) -> Recorded:
        received = time.time()
        form = {k: str(v) for k, v in (await request.post()).items()} if request.method == "POST" else {}
        record = Recorded(request.method, request.path, dict(request.query), form, received)
        with self._lock:
            self.requests.append(record)
        return record

    @staticmethod
    def _error(status: int, code: int, message: str) -> web.Response:
        body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
        return web.json_response({**body, "status": status}, status=status)

    async def _create(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        if not self._authorised(request):
            record.status = 401
            return self._error(401, 20003, "Authenticate")
        with self._lock:
            behaviour = self._down or (self._plan.popleft() if self._plan else "ok")
        if behaviour == "429":
            record.status = 429
            return self._error(429, 20429, "Too Many Requests")
        if behaviour == "500":
            record.status = 500
            return self._error(500, 20500, "Internal Server Error")
        if behaviour == "400":
            record.status = 400
            return self._error(400, 21211, "The 'To' number is not a valid phone number.")
        if behaviour == "hang_before":
            assert self._release is not None
            await self._release.wait()
            raise web.HTTPServiceUnavailable()
        message = self._message(record.form)
        record.sid, record.status = message["sid"], 201
        with self._lock:
            self.messages.append(message)
        if behaviour == "hang":
            assert self._release is not None
            await self._release.wait()
        return web.json_response(message, status=201)

    def _message(self, form: dict[str, str]) -> dict[str, Any]:
        now = format_datetime(datetime.now(UTC), usegmt=True)
        sid = "SM" + secrets.token_hex(16)
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": now,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "to": form.get("To"),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
            "_created": time.time(),
        }

    @staticmethod
    def _public(message: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in message.items() if not k.startswith("_")}

    async def _list(self, request: web.Request) -> web.Response:
        await self._record(request)
        if not self._authorised(request):
            return self._error(401, 20003, "Authenticate")
        query = request.query
        after = query.get("DateSent>")
        since = datetime.strptime(after, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() if after else 0
        with self._lock:
            found = [
                self._public(m)
                for m in reversed(self.messages)  # newest first, as Twilio lists them
                if (not query.get("To") or m["to"] == query["To"])
                and (not query.get("From") or m["from"] == query["From"])
                and m["_created"] >= since
            ]
        size = int(query.get("PageSize", "50"))
        return web.json_response(
            {
                "messages": found[:size],
                "end": min(len(found), size) - 1,
                "first_page_uri": request.path_qs,
                "next_page_uri": None,
                "page": 0,
                "page_size": size,
                "previous_page_uri": None,
                "start": 0,
                "uri": request.path_qs,
            }
        )

    async def _fetch(self, request: web.Request) -> web.Response:
        await self._record(request)
        if not self._authorised(request):
            return self._error(401, 20003, "Authenticate")
        with self._lock:
            found = [m for m in self.messages if m["sid"] == request.match_info["sid"]]
        if not found:
            return self._error(404, 20404, "The requested resource was not found")
        return web.json_response(self._public(found[0]))


def main() -> None:
    """Serve in a process of its own (the benchmark keeps it off the sender's interpreter): prints the
    base URL, then answers each 'dump' line on stdin with the creates as one JSON line, takes 'down 500'
    and 'up' lines; EOF stops it."""
    import json
    import sys

    with FakeTwilio() as fake:
        print(fake.base_url, flush=True)
        for line in sys.stdin:
            if line.startswith("down "):  # "down 500": every create answers that until "up"
                fake.down(line.split()[1])
            elif line.strip() == "up":
                fake.up()
            elif line.strip() == "dump":
                rows = [{"received_at": r.received_at, "status": r.status, **r.form} for r in fake.creates()]
                print(json.dumps(rows), flush=True)


if __name__ == "__main__":
    main()
