"""The station's clip receiver: chunks from ``yaguar/v1/+/clip`` into the clip store, each answered.

Its own MQTT connection (the ingest's credentials, ``-clips`` after its client id) subscribes to the
clip topic only. Each chunk is validated, stored durably, then answered with an ``Ack`` and released
at the broker, as frames are; a refused chunk is dead-lettered with its reason, counted, logged in one
line and answered ``rejected``. A joined clip's frames wake the pipeline.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge

from yaguar.protocol import topics
from yaguar.protocol.clip import from_properties, validate_clip_chunk
from yaguar.protocol.errors import ProtocolError
from yaguar.protocol.messages import Ack
from yaguar.protocol.validate import FrameLimits
from yaguar.storage.models import DeadLetter

from .clip_store import ClipStore
from .context import StationContext, StationHooks
from .ingest.media_store import MediaStore
from .ingest.mqtt_link import Received, StationMqtt

log = logging.getLogger(__name__)


class ClipMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.mqtt_connected = Gauge(
            "yaguar_clip_mqtt_connected", "clip receiver connected", registry=registry
        )
        self.queue_depth = Gauge("yaguar_clip_queue", "clip chunks waiting", registry=registry)
        self.chunks = Counter("yaguar_clip_chunks", "clip chunks, by outcome", ["outcome"], registry=registry)
        self.rejected = Counter(
            "yaguar_clip_rejected", "clip chunks refused, by reason", ["reason"], registry=registry
        )
        self.clips = Counter(
            "yaguar_clips_joined", "clips joined and handed to the pipeline", registry=registry
        )


class ClipLink(StationMqtt):
    """The station's MQTT link, subscribed to clip chunks only."""

    def subscriptions(self) -> list[tuple[str, int]]:
        group, kind = self.config.shared_group, topics.Kind.CLIP
        return [(topics.shared(kind, group) if group else topics.wildcard(kind), 1)]


class ClipReceiver:
    name = "clips"

    def __init__(self, ctx: StationContext) -> None:
        self.ctx = ctx
        config = ctx.config
        self.metrics = ClipMetrics(ctx.metrics)
        self.inbox: queue.Queue[Received] = queue.Queue(maxsize=config.mqtt.receive_maximum * 2)
        mqtt_config = config.mqtt.model_copy(update={"client_id": f"{config.mqtt.client_id}-clips"[:64]})
        self.link = ClipLink(mqtt_config, self.inbox, self.metrics)
        self.store = ClipStore(
            MediaStore(ctx.media_root), ctx.session_factory, sample_every_s=config.ingest.clip_sample_s
        )
        self.limits = FrameLimits(max_payload_bytes=config.ingest.max_payload_bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clip-receiver", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.link.start()

    def stop(self) -> None:
        self.link.stop()
        self._stop.set()
        self._thread.join(timeout=10)

    def setup_routes(self, app: object) -> None:
        return None

    def _run(self) -> None:
        next_expiry = time.monotonic() + 60
        while not self._stop.is_set():
            try:
                item = self.inbox.get(timeout=0.5)
            except queue.Empty:
                item = None
            if item is not None:
                self._handle(item)
            if time.monotonic() >= next_expiry:
                next_expiry = time.monotonic() + 60
                self.store.expire_incomplete(self.ctx.config.ingest.clip_incomplete_s)

    def _handle(self, item: Received) -> None:
        payload = bytes(item.payload)
        try:
            device_id, _ = topics.parse(item.topic)
        except ProtocolError as exc:
            self._refuse(item, None, None, exc, payload)
            return
        try:
            meta = validate_clip_chunk(item.topic, payload, item.properties, self.limits)
            outcome = self.store.receive(meta, payload)
        except ProtocolError as exc:
            self._refuse(item, device_id, _seq_of(item), exc, payload)
            return
        except OSError as exc:  # disk full: no answer, the broker and the agent send it again
            log.error("clip chunk not stored (%s); it will come again", exc)
            return
        self.metrics.chunks.labels(outcome.status).inc()
        self.link.answer_then_ack(
            topics.topic(device_id, topics.Kind.ACK), Ack(seq=meta.seq, status=outcome.status).to_json(), item
        )
        if outcome.media_ids:
            self.metrics.clips.inc()
            StationHooks.fire(self.ctx.hooks.media_committed, list(outcome.media_ids))

    def _refuse(
        self, item: Received, device_id: str | None, seq: int | None, exc: ProtocolError, payload: bytes
    ) -> None:
        self.metrics.rejected.labels(exc.reason).inc()
        log.warning("refused clip chunk on %s: %s (%s)", item.topic[:120], exc, exc.reason)
        with self.ctx.session_factory.begin() as session:
            session.add(
                DeadLetter(
                    topic=item.topic[:300],
                    device_id=device_id,
                    reason=exc.reason,
                    detail=str(exc)[:2000],
                    payload_size=len(payload),
                    payload_sha256=hashlib.sha256(payload).hexdigest(),
                )
            )
        if device_id is not None and seq is not None:
            ack = Ack(seq=seq, status="rejected", reason=exc.reason[:64])
            self.link.answer_then_ack(topics.topic(device_id, topics.Kind.ACK), ack.to_json(), item)
        else:
            self.link.ack(item)


def _seq_of(item: Received) -> int | None:
    """The chunk's seq when its properties can be read: the agent needs it to stop resending a refused
    chunk (it quarantines it on the ``rejected`` Ack)."""
    try:
        return from_properties(item.properties).seq
    except ProtocolError:
        return None


def factory(ctx: StationContext) -> ClipReceiver | None:
    return ClipReceiver(ctx) if ctx.config.ingest.clips else None
