"""The station's optional parts. Each module named here has ``factory(ctx) -> Component | None`` (None
when the part is disabled in the config); the station starts them in this order and stops them in
reverse."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .context import Component, StationContext

ComponentFactory = Callable[[StationContext], Component | None]

# Imported when a station starts, not when this module is: the parts import the station's own modules.
COMPONENT_MODULES = [
    "yaguar.server.pipeline",
    "yaguar.server.clip_receiver",
    "yaguar.server.alerts_component",
    "yaguar.server.dashboard.component",
]


def factories() -> list[ComponentFactory]:
    return [importlib.import_module(name).factory for name in COMPONENT_MODULES]
