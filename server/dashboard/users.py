"""Creating and changing users: shared by the admin page and ``yaguar-station user add``."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from .auth import hash_password
from .models import ROLES, User
from .refusal import N_, RefusalError

USERNAME = re.compile(r"^[A-Za-z0-9._@-]{2,64}$")
MIN_PASSWORD = 10


class UserError(RefusalError):
    """A user that cannot be created or changed; the message says why, for the person at the form."""


def create_user(db: Session, username: str, password: str, role: str, language: str | None = None) -> User:
    if not USERNAME.match(username):
        raise UserError(N_("the user name must be 2-64 letters, digits or . _ @ -"))
    if role not in ROLES:
        raise UserError(N_("the role must be one of %(roles)s"), roles=", ".join(ROLES))
    if len(password) < MIN_PASSWORD or len(password) > 1024:
        raise UserError(N_("the password must have at least %(n)d characters"), n=MIN_PASSWORD)
    if db.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(N_("user %(name)s already exists"), name=username)
    user = User(username=username, password_hash=hash_password(password), role=role, language=language)
    db.add(user)
    db.flush()
    return user


def change_user(
    db: Session, user_id: int, role: str | None, disabled: bool | None, acting_user_id: int
) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise UserError(N_("no such user"))
    if user_id == acting_user_id and (disabled or (role is not None and role != "admin")):
        raise UserError(N_("you cannot lock yourself out: ask another admin"))
    if role is not None:
        if role not in ROLES:
            raise UserError(N_("the role must be one of %(roles)s"), roles=", ".join(ROLES))
        user.role = role
    if disabled is not None:
        user.disabled = disabled
    return user
