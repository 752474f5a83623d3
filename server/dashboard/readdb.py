"""Read-only database sessions for the pages.

The station's engine starts every SQLite transaction with BEGIN IMMEDIATE (the write lock), which is
right for ingest and the pipeline but would make every page view queue behind the writer. Pages only
read, so on SQLite they get their own engine whose statements run as plain WAL reads that never block
and are never blocked by the writer. On other databases the station's engine is used as is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_read_engine(engine: Engine, busy_timeout_ms: int) -> Engine:
    if engine.url.get_backend_name() != "sqlite":
        return engine
    reader = create_engine(
        engine.url, connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False}
    )

    @event.listens_for(reader, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Autocommit at the driver: each SELECT is its own snapshot, no lock is held between pages.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return reader


def make_read_sessions(engine: Engine, busy_timeout_ms: int) -> sessionmaker[Session]:
    return sessionmaker(make_read_engine(engine, busy_timeout_ms), expire_on_commit=False)
