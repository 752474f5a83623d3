"""Prometheus metrics of ingest, registered on the station's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.frames_received = Counter(
            "yaguar_frames_received", "Frame messages received from the broker", registry=registry
        )
        self.frames_stored = Counter(
            "yaguar_frames_stored", "Frames stored for the first time", registry=registry
        )
        self.frames_duplicate = Counter(
            "yaguar_frames_duplicate", "Frames received again and answered as duplicates", registry=registry
        )
        self.rejected = Counter(
            "yaguar_messages_rejected",
            "Messages refused, by kind and reason (see protocol/SPEC.md)",
            ["kind", "reason"],
            registry=registry,
        )
        self.bytes_stored = Counter("yaguar_frame_bytes_stored", "JPEG bytes written", registry=registry)
        self.heartbeats = Counter("yaguar_heartbeats_received", "Heartbeats stored", registry=registry)
        self.commit_failures = Counter(
            "yaguar_ingest_commit_failures",
            "Batches that could not be committed (locked database, full disk); not acked, retried",
            ["reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "yaguar_ingest_latency_seconds",
            "From a message's arrival at the station to its commit",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.batch_size = Histogram(
            "yaguar_ingest_batch_size",
            "Messages per committed transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=registry,
        )
        self.queue_depth = Gauge(
            "yaguar_ingest_queue_depth", "Received messages waiting for the writer", registry=registry
        )
        self.mqtt_connected = Gauge(
            "yaguar_mqtt_connected", "1 while connected to the broker", registry=registry
        )
