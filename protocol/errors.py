"""One error type for everything the contract refuses, with a short code for metrics and dead letters."""

from __future__ import annotations


class ProtocolError(ValueError):
    """A message the contract refuses. ``reason`` is a short code (``not_jpeg``, ``device_mismatch``...)
    used as a metrics label and in the dead-letter table; the message is one line for a person."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
