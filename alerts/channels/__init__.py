"""Where alert messages go: Twilio SMS, a webhook (JSON POST), or the log."""

from .base import Channel, DeliveryView, SendResult

__all__ = ["Channel", "DeliveryView", "SendResult"]
