"""SQL expressions for a UTC time seen at the camera: its local day and minute of the day, on SQLite
and PostgreSQL, so grouping by day or time of day happens in the database, not in Python."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, String, cast, func, literal_column
from sqlalchemy.orm import Session


def is_sqlite(db: Session) -> bool:
    return db.get_bind().dialect.name == "sqlite"


def local_day(db: Session, when: Any, offset_min: Any) -> Any:
    """``YYYY-MM-DD`` of ``when`` (a UTC column) plus ``offset_min`` minutes."""
    if is_sqlite(db):
        return func.date(when, func.printf("%+d minutes", offset_min))
    return func.to_char(_pg_local(when, offset_min), "YYYY-MM-DD")


def local_minute(db: Session, when: Any, offset_min: Any) -> Any:
    """Minutes since local midnight (0..1439)."""
    if is_sqlite(db):
        shifted = func.printf("%+d minutes", offset_min)
        return cast(func.strftime("%H", when, shifted), Integer) * 60 + cast(
            func.strftime("%M", when, shifted), Integer
        )
    local = _pg_local(when, offset_min)
    return cast(func.extract("hour", local) * 60 + func.extract("minute", local), Integer)


def utc_hour(db: Session, when: Any) -> Any:
    """``YYYY-MM-DD HH`` of a UTC column: one value per hour, for counting hours heard from."""
    if is_sqlite(db):
        return func.strftime("%Y-%m-%d %H", when)
    return cast(func.to_char(func.timezone("UTC", when), "YYYY-MM-DD HH24"), String)


def _pg_local(when: Any, offset_min: Any) -> Any:
    return func.timezone("UTC", when) + offset_min * literal_column("interval '1 minute'")
