"""The agent's counters, in a prometheus-client registry that the caller passes in (never the global one).

The heartbeat reads the same counters, so what the station sees and what a local scrape sees agree.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.frames_captured = Counter(
            "yaguar_agent_frames_captured", "frames written to the spool", registry=r
        )
        self.frames_sent = Counter(
            "yaguar_agent_frames_sent", "frames the station acknowledged (stored or duplicate)", registry=r
        )
        self.frames_evicted = Counter(
            "yaguar_agent_frames_evicted",
            "frames lost because the spool was full, by policy",
            ["policy"],
            registry=r,
        )
        self.frames_quarantined = Counter(
            "yaguar_agent_frames_quarantined", "frames set aside, never to be resent", ["reason"], registry=r
        )
        self.clips_quarantined = Counter(
            "yaguar_agent_clips_quarantined",
            "clips set aside unreadable or empty, by reason",
            ["reason"],
            registry=r,
        )
        self.camera_errors = Counter(
            "yaguar_agent_camera_errors", "camera failures (open or capture)", ["stage"], registry=r
        )
        self.bad_messages = Counter(
            "yaguar_agent_bad_messages", "messages from the station that were refused", ["kind"], registry=r
        )
        self.config_rejected = Counter(
            "yaguar_agent_config_rejected", "pushed configs refused (old config kept)", registry=r
        )
        self.triggers = Counter(
            "yaguar_agent_triggers", "triggers that started a burst", ["kind"], registry=r
        )
        self.triggers_suppressed = Counter(
            "yaguar_agent_triggers_suppressed", "PIR edges inside the hold-off", registry=r
        )
        self.publishes = Counter("yaguar_agent_frame_publishes", "frame PUBLISH packets sent", registry=r)
        self.connects = Counter("yaguar_agent_mqtt_connects", "successful broker connections", registry=r)
        self.spool_depth = Gauge(
            "yaguar_agent_spool_depth", "frames waiting for the station's ack", registry=r
        )
        self.spool_bytes = Gauge(
            "yaguar_agent_spool_bytes", "bytes waiting for the station's ack", registry=r
        )

    def total(self, name: str) -> int:
        """Sum of a counter over all its labels, e.g. ``total("yaguar_agent_frames_evicted")``."""
        value = 0.0
        for metric in self.registry.collect():
            if metric.name == name:
                value += sum(s.value for s in metric.samples if s.name == f"{name}_total")
        return int(value)
