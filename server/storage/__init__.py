"""Station storage: SQLAlchemy models, the database engine, and alembic migrations."""

from .base import Base, UTCDateTime, utcnow
from .db import make_db_engine, make_session_factory, upgrade

__all__ = ["Base", "UTCDateTime", "make_db_engine", "make_session_factory", "upgrade", "utcnow"]
