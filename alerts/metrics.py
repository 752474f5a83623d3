"""Prometheus metrics of alerts, registered on the station's registry (never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
        self.failovers = Counter(
            "yaguar_alert_failovers_total",
            "SMS passed from a channel that was down to the next one",
            ["from_channel", "to_channel"],
            registry=registry,
        )
        self.merged = Counter(
            "yaguar_alert_backlog_merged_total",
            "Stale low-severity messages replaced by a backlog summary",
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
        self.gsm_signal = Gauge(
            "yaguar_gsm_signal_percent", "The modem's signal strength, 0-100", registry=registry
        )
        self.gsm_registered = Gauge(
            "yaguar_gsm_registered",
            "1 when the modem is registered on a network (home or roaming)",
            registry=registry,
        )
        self.gsm_sim_ready = Gauge(
            "yaguar_gsm_sim_ready", "1 when the SIM is unlocked and ready", registry=registry
        )
        self.gsm_present = Gauge("yaguar_gsm_modem_present", "1 when the modem answers", registry=registry)
        self.gsm_reports = Counter(
            "yaguar_gsm_delivery_reports_total",
            "Delivery reports read from the modem (delivered, trying, undelivered, unmatched)",
            ["outcome"],
            registry=registry,
        )
        self.send_latency = Histogram(
            "yaguar_alert_send_latency_seconds",
            "From the alert written to the provider's answer",
            ["channel"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=registry,
        )
