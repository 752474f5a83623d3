"""Makes the thumbnails of newly committed events in the background, so a ranger opening the feed or
a live row finds them already on disk instead of waiting for a 12-megapixel decode."""

from __future__ import annotations

import logging
import queue
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yaguar.storage.models import Media

from .thumbs import ThumbnailCache

log = logging.getLogger(__name__)

QUEUE_MAX = 2000  # event ids; past this (a flood) thumbnails are made on first view instead
FRAMES_PER_EVENT = 20


class ThumbnailWarmer:
    def __init__(self, sessions: sessionmaker[Session], thumbs: ThumbnailCache) -> None:
        self._sessions = sessions
        self._thumbs = thumbs
        self._queue: queue.Queue[int | None] = queue.Queue(maxsize=QUEUE_MAX)
        self._thread: threading.Thread | None = None

    def events_committed(self, event_ids: list[int]) -> None:
        """The hook: any thread, returns at once."""
        for event_id in event_ids:
            try:
                self._queue.put_nowait(event_id)
            except queue.Full:
                log.debug("thumbnail warmer busy: event %d left for first view", event_id)
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dashboard-thumbs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        while True:  # drop what is queued: stopping must not wait for decodes
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        self._thread.join(10)
        self._thread = None

    def _run(self) -> None:
        while (event_id := self._queue.get()) is not None:
            try:
                with self._sessions() as db:
                    frames = db.execute(
                        select(Media.id, Media.path).where(Media.event_id == event_id).limit(FRAMES_PER_EVENT)
                    ).all()
                for media_id, path in frames:
                    self._thumbs.get(media_id, path)
            except Exception as exc:  # a bad frame or a busy database must not stop the warmer
                log.warning("thumbnails of event %d not made ahead: %s", event_id, exc)
