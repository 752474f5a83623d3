"""The station's database schema: every module that defines tables, so ``Base.metadata`` is complete
(alembic, tests), and upgrades through the alembic migrations in ``server/migrations``.

The tables themselves live low (``yaguar.storage``, ``yaguar.alerts.models``, the dashboard's): the
station is the one part that knows them all, so the migrations live here.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

from sqlalchemy import Engine

from yaguar.alerts import device_models  # noqa: F401
from yaguar.alerts import models as alerts_models  # noqa: F401
from yaguar.storage import models  # noqa: F401

from . import classifier_choice  # noqa: F401
from .analysis import detections as analysis_index  # noqa: F401  (the events index it counts from)
from .analysis import heard as analysis_heard  # noqa: F401  (the hours each camera was heard)
from .dashboard import box_review as box_review_models  # noqa: F401
from .dashboard import models as dashboard_models  # noqa: F401
from .deployments import models as deployment_models  # noqa: F401

log = logging.getLogger(__name__)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("yaguar.server") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision of every branch (core, pipeline, alerts, dashboard)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")
    log.debug("database schema is up to date")
