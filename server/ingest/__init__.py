"""MQTT ingest: frames, heartbeats and status from the agents into the database, exactly once."""

from __future__ import annotations

import logging
import queue

from ..context import StationContext, StationHooks
from .media_store import MediaStore
from .metrics import IngestMetrics
from .mqtt_link import Received, StationMqtt
from .writer import IngestWriter

log = logging.getLogger(__name__)


class IngestService:
    def __init__(self, ctx: StationContext) -> None:
        config = ctx.config
        self.metrics = IngestMetrics(ctx.metrics)
        # Larger than the broker's in-flight window, so the network thread never blocks on it.
        size = max(config.ingest.queue_size, config.mqtt.receive_maximum * 2)
        self.inbox: queue.Queue[Received] = queue.Queue(maxsize=size)
        self.media = MediaStore(ctx.media_root, config.storage.drop_frames_from_cache)
        self.link = StationMqtt(config.mqtt, self.inbox, self.metrics)
        self.writer = IngestWriter(
            config.ingest,
            self.inbox,
            self.link,
            ctx.session_factory,
            self.media,
            self.metrics,
            on_stored=lambda ids: StationHooks.fire(ctx.hooks.media_committed, ids),
        )

    def start(self) -> None:
        removed = self.media.remove_temp_files()
        if removed:
            log.info("removed %d partial frame files left by an earlier crash", removed)
        self.writer.start()
        self.link.start()

    def stop(self) -> None:
        self.link.stop()
        self.writer.stop()


__all__ = ["IngestService", "MediaStore"]
