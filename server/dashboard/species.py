"""Species names for people: the common name in the page's language, beside the scientific name.

The engine's taxonomy (``yaguar.taxonomy.common_name``) is the source when it is installed; until
then, and for names it does not know, a small table of the species the project meets covers the pages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache

log = logging.getLogger(__name__)

# Fallback: species of the demo images and of the Chaco / Pantanal sites, scientific -> (es, en).
_FALLBACK: dict[str, tuple[str, str]] = {
    "Panthera onca": ("Yaguareté", "Jaguar"),
    "Puma concolor": ("Puma", "Cougar"),
    "Leopardus pardalis": ("Ocelote", "Ocelot"),
    "Tapirus terrestris": ("Tapir", "Lowland tapir"),
    "Pecari tajacu": ("Pecarí de collar", "Collared peccary"),
    "Tayassu pecari": ("Pecarí labiado", "White-lipped peccary"),
    "Odocoileus virginianus": ("Venado de cola blanca", "White-tailed deer"),
    "Odocoileus hemionus": ("Venado bura", "Mule deer"),
    "Vulpes vulpes": ("Zorro rojo", "Red fox"),
    "Urocyon cinereoargenteus": ("Zorro gris", "Gray fox"),
    "Canis lupus": ("Lobo", "Wolf"),
    "Lynx rufus": ("Lince rojo", "Bobcat"),
    "Sarcoramphus papa": ("Jote real", "King vulture"),
    "Ardea cinerea": ("Garza real", "Grey heron"),
    "Homo sapiens": ("Humano", "Human"),
}


@cache
def _engine_lookup() -> Callable[[str, str], str | None] | None:
    try:
        from yaguar.taxonomy import common_name
    except ImportError:
        log.debug("engine taxonomy not installed; using the dashboard's species table")
        return None
    return common_name


def common_name(scientific: str | None, lang: str) -> str | None:
    """The common name of ``scientific`` in ``lang`` ("es" or "en"), or None when nobody knows it."""
    if not scientific:
        return None
    lookup = _engine_lookup()
    if lookup is not None:
        try:
            name = lookup(scientific, lang)
        except Exception as exc:  # a taxonomy bug must not take a page down
            log.warning("taxonomy lookup of %s failed: %s", scientific, exc)
            name = None
        if name and name != scientific:  # the engine answers the scientific name when it has no other
            return name
    pair = _FALLBACK.get(scientific)
    if pair is None:
        return None
    return pair[0] if lang == "es" else pair[1]


def known_species() -> list[str]:
    """Scientific names offered in the review form's list (anything else may still be typed)."""
    try:
        from yaguar.taxonomy import SPECIES
    except ImportError:
        return sorted(_FALLBACK)
    return sorted(set(SPECIES) | set(_FALLBACK))
