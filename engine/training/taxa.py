"""Folder names to taxa: a training folder's sub-folders may be named by scientific name
("Panthera onca", "Panthera_onca", "panthera-onca") or by the Spanish or English common name that
rangers use ("chigüiro", "capybara"). Anything else is not a taxon and is refused with a reason."""

from __future__ import annotations

import re
import unicodedata

from yaguar.taxonomy import REGIONS, SPECIES, Species

# Other names Colombian rangers use for the same animals; the taxonomy holds one name per language.
ALIASES: dict[str, str] = {
    "tigrillo": "Leopardus pardalis",
    "cougar": "Puma concolor",
    "mountain lion": "Puma concolor",
    "leon de montana": "Puma concolor",
    "oso de anteojos": "Tremarctos ornatus",
    "mono cotudo": "Alouatta seniculus",
    "cotudo": "Alouatta seniculus",
    "aullador": "Alouatta seniculus",
    "zaino": "Dicotyles tajacu",
    "pecari de collar": "Dicotyles tajacu",
    "manao": "Tayassu pecari",
    "pecari de labio blanco": "Tayassu pecari",
    "tapir": "Tapirus terrestris",
    "rey gallinazo": "Sarcoramphus papa",
    "harpia": "Harpia harpyja",
    "capibara": "Hydrochoerus hydrochaeris",
}


def _key(text: str) -> str:
    """Lower case, accents and separators folded: "Chigüiro" and "chiguiro" are one name."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[\s_\-.]+", " ", folded).strip().lower()


def _index() -> dict[str, Species]:
    index: dict[str, Species] = {}
    for species in SPECIES.values():
        for name in (species.scientific, species.en, species.es):
            index.setdefault(_key(name), species)
    for alias, scientific in ALIASES.items():
        index.setdefault(_key(alias), SPECIES[scientific])
    return index


_INDEX = _index()


class NotATaxonError(ValueError):
    """A class name that names no species Yaguar knows."""


def resolve(folder_name: str) -> Species:
    """The species a folder name stands for, or NotATaxonError with a one-line reason."""
    species = _INDEX.get(_key(folder_name))
    if species is None:
        raise NotATaxonError(
            f"{folder_name!r} is not a species Yaguar knows: name the folder by its scientific name "
            f"(e.g. 'Panthera onca') or its Spanish or English common name (e.g. 'chigüiro')"
        )
    return species


def in_region(scientific: str, region: str) -> bool:
    return region == "none" or scientific in REGIONS.get(region, frozenset())
