"""Languages of the pages: gettext catalogs (Babel ``.po`` sources in ``i18n/<lang>/LC_MESSAGES``),
compiled at start, one jinja2 environment per language.

The ``.po`` files are the source of truth: a translator edits them with any gettext tool, and the
station compiles them when it starts, so a stale ``.mo`` can never be served.
"""

from __future__ import annotations

import gettext
import io
import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

import jinja2
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

LANGUAGES = ("es", "en")
DOMAIN = "messages"


def catalog_dir() -> Any:
    return resources.files("yaguar.server.dashboard") / "i18n"


def load_translations(lang: str) -> gettext.GNUTranslations:
    """Compile ``<lang>/LC_MESSAGES/messages.po`` in memory and load it."""
    po_path = catalog_dir() / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def make_environments(
    filters_for: Callable[[str], dict[str, Any]], globals_: dict[str, Any]
) -> dict[str, jinja2.Environment]:
    """One autoescaping jinja2 environment per language, with ``_``/``gettext``/``ngettext`` installed."""
    loader = jinja2.PackageLoader("yaguar.server.dashboard", "templates")
    envs: dict[str, jinja2.Environment] = {}
    for lang in LANGUAGES:
        env = jinja2.Environment(
            loader=loader,
            autoescape=jinja2.select_autoescape(["html"]),
            extensions=["jinja2.ext.i18n"],
            undefined=jinja2.StrictUndefined,
        )
        env.install_gettext_translations(load_translations(lang), newstyle=True)  # type: ignore[attr-defined]
        env.filters.update(filters_for(lang))
        env.globals.update(globals_)
        env.globals["lang"] = lang
        envs[lang] = env
    log.debug("page catalogs loaded: %s", ", ".join(LANGUAGES))
    return envs
