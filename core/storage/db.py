"""Database engine and sessions: SQLite in WAL mode (one writer, busy timeout, synchronous=FULL by
default) or PostgreSQL. Schema upgrades (alembic) belong to the station: ``yaguar.server.schema``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

SqliteSync = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


def make_db_engine(url: str, sqlite_synchronous: SqliteSync = "FULL", busy_timeout_ms: int = 5000) -> Engine:
    """Create the engine; for SQLite, set WAL, the busy timeout and the durability level on every
    connection (pragmas are per connection, not per file)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # The driver's own transaction handling is switched off so BEGIN IMMEDIATE below takes the write
        # lock at the start of a transaction, not at its first write (no lock upgrade deadlocks).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute(f"PRAGMA synchronous={sqlite_synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def database_now(session: Session) -> datetime:
    """The database server's clock (UTC): the one clock every worker agrees on."""
    value = session.execute(select(func.current_timestamp())).scalar_one()
    if isinstance(value, str):  # SQLite answers text, "YYYY-MM-DD HH:MM:SS", in UTC
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
