"""Species Yaguar knows by name, and the region list that says which can occur where.

Species are keyed by scientific name; each has Spanish and English common names. The default region
is Colombia (the project's first deployments): a classifier's answer outside the region list is
demoted, like SpeciesNet's geofencing, first to its genus when the genus occurs here, else to no
species at all (the detection keeps its category, e.g. "animal").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Species:
    scientific: str
    es: str
    en: str
    group: str  # mammal, bird, reptile


_COLOMBIA = [
    Species("Panthera onca", "jaguar", "jaguar", "mammal"),
    Species("Leopardus pardalis", "ocelote", "ocelot", "mammal"),
    Species("Puma concolor", "puma", "puma", "mammal"),
    Species("Leopardus wiedii", "margay", "margay", "mammal"),
    Species("Herpailurus yagouaroundi", "yaguarundí", "jaguarundi", "mammal"),
    Species("Leopardus tigrinus", "tigrillo lanudo", "oncilla", "mammal"),
    Species("Tapirus terrestris", "danta", "lowland tapir", "mammal"),
    Species("Tapirus bairdii", "danta centroamericana", "Baird's tapir", "mammal"),
    Species("Tapirus pinchaque", "danta de páramo", "mountain tapir", "mammal"),
    Species("Tayassu pecari", "cafuche", "white-lipped peccary", "mammal"),
    Species("Dicotyles tajacu", "saíno", "collared peccary", "mammal"),
    Species("Cuniculus paca", "guagua", "lowland paca", "mammal"),
    Species("Dasyprocta punctata", "ñeque", "Central American agouti", "mammal"),
    Species("Dasyprocta fuliginosa", "ñeque negro", "black agouti", "mammal"),
    Species("Myrmecophaga tridactyla", "oso palmero", "giant anteater", "mammal"),
    Species("Tamandua mexicana", "oso hormiguero", "northern tamandua", "mammal"),
    Species("Eira barbara", "ulamá", "tayra", "mammal"),
    Species("Nasua nasua", "cusumbo", "South American coati", "mammal"),
    Species("Procyon cancrivorus", "mapache cangrejero", "crab-eating raccoon", "mammal"),
    Species("Cerdocyon thous", "zorro perruno", "crab-eating fox", "mammal"),
    Species("Urocyon cinereoargenteus", "zorro gris", "grey fox", "mammal"),
    Species("Speothos venaticus", "perro de monte", "bush dog", "mammal"),
    Species("Tremarctos ornatus", "oso andino", "spectacled bear", "mammal"),
    Species("Odocoileus virginianus", "venado cola blanca", "white-tailed deer", "mammal"),
    Species("Mazama americana", "venado soche", "red brocket", "mammal"),
    Species("Hydrochoerus hydrochaeris", "chigüiro", "capybara", "mammal"),
    Species("Dasypus novemcinctus", "armadillo", "nine-banded armadillo", "mammal"),
    Species("Priodontes maximus", "armadillo gigante", "giant armadillo", "mammal"),
    Species("Didelphis marsupialis", "chucha", "common opossum", "mammal"),
    Species("Lontra longicaudis", "nutria", "neotropical otter", "mammal"),
    Species("Pteronura brasiliensis", "perro de agua", "giant otter", "mammal"),
    Species("Alouatta seniculus", "mono aullador rojo", "red howler monkey", "mammal"),
    Species("Ateles hybridus", "marimonda", "brown spider monkey", "mammal"),
    Species("Cebus albifrons", "mono capuchino", "white-fronted capuchin", "mammal"),
    Species("Bradypus variegatus", "perezoso de tres dedos", "brown-throated sloth", "mammal"),
    Species("Sarcoramphus papa", "rey de los gallinazos", "king vulture", "bird"),
    Species("Coragyps atratus", "gallinazo negro", "black vulture", "bird"),
    Species("Cathartes aura", "guala cabecirroja", "turkey vulture", "bird"),
    Species("Harpia harpyja", "águila harpía", "harpy eagle", "bird"),
    Species("Crax alberti", "paujil de pico azul", "blue-billed curassow", "bird"),
    Species("Ara macao", "guacamaya bandera", "scarlet macaw", "bird"),
    Species("Ara militaris", "guacamaya verde", "military macaw", "bird"),
    Species("Ara ararauna", "guacamaya azul y amarilla", "blue-and-yellow macaw", "bird"),
    Species("Ramphastos sulfuratus", "tucán pechiamarillo", "keel-billed toucan", "bird"),
    Species("Strix virgata", "búho moteado", "mottled owl", "bird"),
    Species("Pulsatrix perspicillata", "búho de anteojos", "spectacled owl", "bird"),
    Species("Ardea cocoi", "garza morena", "cocoi heron", "bird"),
    Species("Tinamus major", "tinamú grande", "great tinamou", "bird"),
    Species("Caiman crocodilus", "babilla", "spectacled caiman", "reptile"),
    Species("Iguana iguana", "iguana", "green iguana", "reptile"),
    Species("Boa constrictor", "boa", "boa constrictor", "reptile"),
]

# Species seen in the test and demo images from elsewhere, so they can still be named in reports.
_ELSEWHERE = [
    Species("Canis latrans", "coyote", "coyote", "mammal"),
    Species("Canis lupus", "lobo", "grey wolf", "mammal"),
    Species("Lynx rufus", "lince rojo", "bobcat", "mammal"),
    Species("Vulpes vulpes", "zorro rojo", "red fox", "mammal"),
    Species("Ursus americanus", "oso negro", "American black bear", "mammal"),
    Species("Panthera pardus", "leopardo", "leopard", "mammal"),
    Species("Strix nebulosa", "cárabo lapón", "great grey owl", "bird"),
    Species("Ardea cinerea", "garza real", "grey heron", "bird"),
    Species("Haliaeetus leucocephalus", "pigargo americano", "bald eagle", "bird"),
]

# Families (or subfamilies) some classifiers answer with, and their genera: a family is kept where one
# of its genera occurs in the region.
HIGHER_TAXA: dict[str, frozenset[str]] = {
    "Cathartidae": frozenset({"Sarcoramphus", "Coragyps", "Cathartes", "Vultur", "Gymnogyps"}),
    "Lutrinae": frozenset({"Lontra", "Pteronura", "Lutra", "Enhydra", "Aonyx"}),
    "Dasypodidae": frozenset({"Dasypus", "Priodontes", "Cabassous", "Tolypeutes"}),
}

SPECIES: dict[str, Species] = {s.scientific: s for s in [*_COLOMBIA, *_ELSEWHERE]}
REGIONS: dict[str, frozenset[str]] = {"colombia": frozenset(s.scientific for s in _COLOMBIA)}
DEFAULT_REGION = "colombia"


def common_name(scientific: str, lang: str = "es") -> str:
    """The common name in Spanish ("es") or English ("en"); the scientific name when unknown."""
    species = SPECIES.get(scientific)
    if species is None:
        return scientific
    return species.es if lang == "es" else species.en


def region_species(region: str | None, extra: list[str] | None = None) -> frozenset[str] | None:
    """The scientific names allowed in a region (None: no geofencing), plus configured extras."""
    if region is None or region == "none":
        return None
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}; known: {', '.join(sorted(REGIONS))} or 'none'")
    return REGIONS[region] | frozenset(extra or [])


def geofence(scientific: str | None, allowed: frozenset[str] | None) -> tuple[str | None, bool]:
    """Return the name to keep and whether it was demoted.

    A species outside the region rolls up to its genus when some species of that genus occurs in the
    region (a great grey owl becomes "Strix" in Colombia), otherwise to None.
    """
    if scientific is None or allowed is None or scientific in allowed:
        return scientific, False
    if scientific in HIGHER_TAXA:
        present = any(name.split()[0] in HIGHER_TAXA[scientific] for name in allowed)
        return (scientific, False) if present else (None, True)
    genus = scientific.split()[0]
    if any(name.split()[0] == genus for name in allowed):
        return (genus if genus != scientific else scientific), genus != scientific
    return None, True
