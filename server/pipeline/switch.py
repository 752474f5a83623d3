"""Switching species classifiers in a running station: the pipeline's loader polls the newest
``ClassifierChoice`` and, when it changed, loads the new classifiers (off the inference thread) and
swaps them in. A choice that cannot be loaded is logged and counted, and the old classifiers keep
working: a bad model file never stops the station."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from yaguar.engine.backends.base import BackendError
from yaguar.engine.manifest import ManifestError

from ..classifier_choice import latest_choice

if TYPE_CHECKING:
    from prometheus_client import Counter

    from yaguar.engine.analyser import Analyser

    from ..context import StationContext

log = logging.getLogger(__name__)


class ClassifierSwitch:
    def __init__(self, ctx: StationContext, analyser: Analyser, errors: Counter) -> None:
        self.ctx, self.analyser, self.errors = ctx, analyser, errors  # errors: pipeline errors by kind
        self.seen: int | None = None  # id of the newest choice acted on
        self.failed: str | None = None  # why the newest choice could not be loaded

    def poll(self) -> bool:
        """Apply a new choice if there is one; True when the classifiers changed."""
        with self.ctx.session_factory() as session:
            choice = latest_choice(session)
            if choice is None or choice.id == self.seen:
                return False
            self.seen, names, by = choice.id, list(json.loads(choice.classifiers)), choice.chosen_by
        try:
            loaded = self.analyser.load_classifiers(names)
        except (ManifestError, BackendError) as exc:
            self.failed = str(exc)
            self.errors.labels("classifier_switch").inc()
            log.error("classifier choice %s not applied, the old classifiers stay: %s", self.seen, exc)
            return False
        self.failed = None
        self.analyser.classifiers = loaded
        log.info("classifiers switched to %s (chosen by %s)", ", ".join(c.ident for c in loaded), by)
        return True
