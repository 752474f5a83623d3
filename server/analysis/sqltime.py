"""SQL expressions for a UTC time seen at the camera, on SQLite and PostgreSQL, so grouping by local
day or time of day happens in the database, not in Python.

Everything derives from one integer per row, the camera's local clock in minutes since 1970: one date
parse per row (the costly part on SQLite), then integer arithmetic for the day and the minute.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Integer, String, cast, func
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FromClause


def _sqlite_from_hint(_compiler: SQLCompiler, _table: FromClause, text: str | None) -> str | None:
    return text


# SQLAlchemy renders table hints on a few dialects only; on SQLite the hint ``INDEXED BY name`` is
# SQL of its own, written after the table name as given (``select().with_hint(table, text, "sqlite")``).
SQLiteCompiler.get_from_hint_text = _sqlite_from_hint  # type: ignore[method-assign,assignment]

EPOCH = date(1970, 1, 1)
EPOCH_JULIAN_DAY = 2440587.5


def is_sqlite(db: Session) -> bool:
    return db.get_bind().dialect.name == "sqlite"


def local_minutes(db: Session, when: Any, offset_min: Any) -> Any:
    """Minutes since 1970-01-01 00:00 on the camera's clock (``when`` is UTC, plus ``offset_min``)."""
    if is_sqlite(db):
        seconds = cast((func.julianday(when) - EPOCH_JULIAN_DAY) * 86_400 + 0.5, Integer)
    else:
        seconds = cast(func.floor(func.extract("epoch", when)), Integer)
    return seconds // 60 + offset_min  # floor division: whole minutes (plain / is true division)


def day_number(day: date) -> int:
    return (day - EPOCH).days


_EPOCH_ORDINAL = EPOCH.toordinal()


def day_of(number: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + number)


def utc_hour(db: Session, when: Any) -> Any:
    """``YYYY-MM-DD HH`` of a UTC column: one value per hour, for counting the hours heard from. SQLite
    keeps times as ``YYYY-MM-DD HH:MM:SS.ffffff`` text, so the hour is its first 13 characters."""
    if is_sqlite(db):
        return func.substr(when, 1, 13)
    return cast(func.to_char(func.timezone("UTC", when), "YYYY-MM-DD HH24"), String)
