"""Prometheus metrics of alerts, registered on the station's registry (never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.alerts = Counter(
            "yaguar_alerts_total", "Alerts written to the outbox", ["rule", "kind"], registry=registry
        )
        self.held_back = Counter(
            "yaguar_alerts_held_back_total",
            "Matches that sent nothing at once: grouped, quiet hours, capped, stale, repeated",
            ["reason"],
            registry=registry,
        )
        self.attempts = Counter(
            "yaguar_alert_send_attempts_total",
            "Delivery attempts by channel and outcome (sent, retry, failed, unknown)",
            ["channel", "outcome"],
            registry=registry,
        )
        self.reconciled = Counter(
            "yaguar_alert_reconciliations_total",
            "Answers about 'unknown' deliveries (sent, failed, absent, unknown)",
            ["outcome"],
            registry=registry,
        )
        self.escalations = Counter("yaguar_alert_escalations_total", "Alerts escalated", registry=registry)
        self.acks = Counter(
            "yaguar_alert_acks_total", "Acknowledgements by where they came from", ["via"], registry=registry
        )
        self.rejected = Counter(
            "yaguar_alert_requests_rejected_total",
            "Callbacks and replies refused (bad signature, malformed, unknown code or sender)",
            ["endpoint", "reason"],
            registry=registry,
        )
        self.send_latency = Histogram(
            "yaguar_alert_send_latency_seconds",
            "From the alert written to the provider's answer",
            ["channel"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=registry,
        )
