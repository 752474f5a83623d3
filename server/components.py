"""The station's optional parts. Each factory returns its component, or None when it is disabled in the
config; the station starts them in this order and stops them in reverse."""

from __future__ import annotations

from collections.abc import Callable

from .context import Component, StationContext

ComponentFactory = Callable[[StationContext], Component | None]

FACTORIES: list[ComponentFactory] = []
FACTORIES.append(lambda ctx: __import__("yaguar.engine.pipeline", fromlist=["factory"]).factory(ctx))
FACTORIES.append(lambda ctx: __import__("yaguar.alerts.component", fromlist=["factory"]).factory(ctx))
FACTORIES.append(
    lambda ctx: __import__("yaguar.server.dashboard.component", fromlist=["factory"]).factory(ctx)
)
