"""The pages' catalogs: every string marked in the templates and the code is in the Spanish catalog,
translated, and the catalogs compile; nothing user-facing is left untranslated by accident."""

from __future__ import annotations

from importlib import resources

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from yaguar.server.dashboard.i18n import LANGUAGES, load_translations

METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


# Packages whose pages or refusals the dashboard shows (their templates live in the dashboard's).
PACKAGES = ("yaguar.server.dashboard", "yaguar.server.deployments", "yaguar.server.analysis")


def _marked() -> set[str]:
    found = set()
    for package in PACKAGES:
        root = resources.files(package)
        for _file, _line, message, _comments, _ctx in extract_from_dir(str(root), METHODS, keywords=KEYWORDS):
            found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog(lang: str):
    path = resources.files("yaguar.server.dashboard") / "i18n" / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=lang)


def test_every_marked_string_is_translated_to_spanish() -> None:
    marked = _marked()
    assert len(marked) > 80 and "Events" in marked and "animal" in marked
    spanish = _catalog("es")
    missing = sorted(m for m in marked if not (spanish.get(m) and spanish.get(m).string))
    assert missing == []
    assert spanish.get("Events").string == "Eventos"
    english = _catalog("en")
    assert sorted(m for m in marked if english.get(m) is None) == []


def test_catalogs_compile_and_translate() -> None:
    for lang in LANGUAGES:
        translations = load_translations(lang)
        expected = "Cámaras" if lang == "es" else "Cameras"
        assert translations.gettext("Cameras") == expected
