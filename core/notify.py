"""systemd's sd_notify (READY, WATCHDOG, STATUS, STOPPING) for the agent and the station services."""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)


class Notifier:
    """sd_notify through the sdnotify package; silent when not run by systemd."""

    def __init__(self) -> None:
        self._notifier: Any = None
        if os.environ.get("NOTIFY_SOCKET"):
            try:
                import sdnotify

                self._notifier = sdnotify.SystemdNotifier()
            except ImportError:
                log.warning("sdnotify is not installed: systemd will not hear READY or WATCHDOG")
        usec = os.environ.get("WATCHDOG_USEC", "")
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() else None

    def notify(self, state: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(state)
