"""What several parts of the station share about the database: the declarative base and column types,
the core tables (devices, frames, heartbeats, dead letters, events, detections), and the engine and
session factory. It imports nothing of Yaguar above it; the station's ``yaguar.server.schema`` gathers
every table and runs the migrations."""

from .base import Base, UTCDateTime, utcnow
from .db import make_db_engine, make_session_factory

__all__ = ["Base", "UTCDateTime", "make_db_engine", "make_session_factory", "utcnow"]
