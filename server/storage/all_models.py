"""Imports every module that defines tables, so ``Base.metadata`` is complete (alembic, tests)."""

from . import models  # noqa: F401
