"""The station pipeline component (decode -> motion -> detect -> classify -> events)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .component import PipelineComponent

if TYPE_CHECKING:
    from ..context import StationContext


def factory(ctx: StationContext) -> PipelineComponent | None:
    """The station's factory: None when ``[pipeline] enabled = false``."""
    return PipelineComponent(ctx) if ctx.config.pipeline.enabled else None


__all__ = ["PipelineComponent", "factory"]
