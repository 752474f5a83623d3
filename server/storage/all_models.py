"""Imports every module that defines tables, so ``Base.metadata`` is complete (alembic, tests)."""

from yaguar.alerts import models as alerts_models  # noqa: F401
from yaguar.server.dashboard import models as dashboard_models  # noqa: F401

from . import models  # noqa: F401
