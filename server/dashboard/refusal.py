"""Refusals of bad input that a person reads: an English message id (logged as is) with its values, so
the page can show it in the reader's language from the same gettext catalog as the templates."""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translate later"
    """Marks a string for the catalog; it is translated where it is shown."""
    return message


class RefusalError(ValueError):
    def __init__(self, msgid: str, **params: Any) -> None:
        self.msgid = msgid
        self.params = params
        super().__init__(msgid % params if params else msgid)

    def translated(self, gettext: Any) -> str:
        text = gettext(self.msgid)
        return text % self.params if self.params else text
