"""The live feed: the pipeline's ``events_committed`` hook (called from the committing thread) is passed
onto the event loop with ``call_soon_threadsafe`` and fanned out to every open Server-Sent-Events stream.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web
from prometheus_client import Gauge

log = logging.getLogger(__name__)

QUEUE_MAX = 100  # a stream this far behind is slow or stuck: it gets a "reload" instead of more ids
KEEPALIVE_S = 15.0


class LiveFeed:
    def __init__(self, clients_gauge: Gauge) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue[list[int] | None]] = set()
        self._gauge = clients_gauge

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def events_committed(self, event_ids: list[int]) -> None:
        """The hook: any thread, must return at once."""
        loop = self._loop
        if loop is None or loop.is_closed() or not event_ids:
            return
        try:
            loop.call_soon_threadsafe(self._publish, list(event_ids))
        except RuntimeError:  # the loop closed between the check and the call (station stopping)
            log.debug("live feed: loop closed, %d event ids dropped", len(event_ids))

    def _publish(self, event_ids: list[int]) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(event_ids)
            except asyncio.QueueFull:
                log.info("live feed: a slow stream missed updates; it is told to reload")
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)

    def close(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for queue in list(self._queues):
                loop.call_soon_threadsafe(queue.put_nowait, None)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """One SSE stream: ``event: events`` with a JSON list of ids, or ``event: reload``."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        queue: asyncio.Queue[list[int] | None] = asyncio.Queue(maxsize=QUEUE_MAX)
        self._queues.add(queue)
        self._gauge.inc()
        try:
            await response.write(b": connected\n\n")
            while True:
                try:
                    ids = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if ids is None:
                    await response.write(b"event: reload\ndata: {}\n\n")
                    break
                await response.write(f"event: events\ndata: {json.dumps(ids)}\n\n".encode())
        except ConnectionResetError:
            log.debug("live feed: a browser went away")
        finally:
            self._queues.discard(queue)
            self._gauge.dec()
        return response
