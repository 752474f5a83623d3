"""Tables of the dashboard: the people who log in, and their reviews of events.

A review never changes the machine's answer on ``events``: it is stored beside it, with who and when,
and the newest review of an event is the human answer the pages and the exports show.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yaguar.storage.base import Base, UTCDateTime, utcnow
from yaguar.storage.models import Event

ROLES = ("viewer", "reviewer", "admin")
# What a reviewer can say about an event.
REVIEW_ACTIONS = ("confirm", "correct", "blank", "false_positive")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200), doc="argon2id, with its own salt and cost")
    role: Mapped[str] = mapped_column(String(16), doc="viewer, reviewer or admin")
    language: Mapped[str | None] = mapped_column(String(8), doc="preferred language; None: the default")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Review(Base):
    """One person's verdict on one event; the newest one per event counts."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_event_created", "event_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(16), doc="confirm, correct, blank or false_positive")
    category: Mapped[str] = mapped_column(String(16), doc="animal, person, vehicle or blank, as reviewed")
    species: Mapped[str | None] = mapped_column(String(120), doc="scientific name, as reviewed")
    count: Mapped[int] = mapped_column(Integer, default=0)
    comment: Mapped[str | None] = mapped_column(Text)


class LoginFailures(Base):
    """Wrong passwords counted per user name and per address (log-in throttling). In the database, so a
    restart does not forget them and every station process on one PostgreSQL sees the same counts."""

    __tablename__ = "login_failures"
    __table_args__ = (UniqueConstraint("kind", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), doc="user (a user name, lower case) or address (an IP)")
    key: Mapped[str] = mapped_column(String(80))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    wait_until: Mapped[datetime | None] = mapped_column(UTCDateTime, doc="attempts before this are refused")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, doc="the last failure")


# The feed's species filter and its list of species read events by species: an index of the dashboard's
# own (created in migration d002) on the core table, so the core model needs no change.
Index("ix_events_species_started", Event.species, Event.started_at)
