"""Built-in tables that map a model's own labels onto Yaguar's categories and species.

Categories are what rangers filter on (animal, person, vehicle); species are scientific names, known
only where a label really names one. A COCO detector on camera-trap frames often names the wrong
animal (a jaguar as "giraffe"), so COCO animal classes map to the category "animal" and to no species.
"""

from __future__ import annotations

import re

from .manifest import LabelSpec

COCO_PERSON = frozenset({"person"})
COCO_VEHICLE = frozenset(
    {"bicycle", "car", "motorcycle", "motorbike", "airplane", "aeroplane", "bus", "train", "truck", "boat"}
)
COCO_ANIMAL = frozenset(
    {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"}
)

MEGADETECTOR = {"animal": "animal", "person": "person", "vehicle": "vehicle"}

# ImageNet classes that name one species (or a genus) found in camera-trap work; matched on the first
# comma-separated name of the label line.
IMAGENET_SPECIES = {
    "jaguar": "Panthera onca",
    "cougar": "Puma concolor",
    "leopard": "Panthera pardus",
    "great grey owl": "Strix nebulosa",
    "macaw": "Ara",
    "lorikeet": "Trichoglossus",
    "toucan": "Ramphastos",
    "vulture": "Cathartidae",
    "bald eagle": "Haliaeetus leucocephalus",
    "howler monkey": "Alouatta",
    "spider monkey": "Ateles",
    "capuchin": "Cebus",
    "three-toed sloth": "Bradypus",
    "armadillo": "Dasypus novemcinctus",
    "grey fox": "Urocyon cinereoargenteus",
    "red fox": "Vulpes vulpes",
    "coyote": "Canis latrans",
    "timber wolf": "Canis lupus",
    "american black bear": "Ursus americanus",
    "wild boar": "Sus scrofa",
    "common iguana": "Iguana iguana",
    "boa constrictor": "Boa constrictor",
    "otter": "Lutrinae",
}

# ImageNet's classes are ordered by WordNet: every animal class comes first, up to this one.
IMAGENET_LAST_ANIMAL = "puffer, pufferfish, blowfish, globefish"
# Animal classes a camera trap on land does not photograph, as ranges of the 1001-label list (index 0
# is "background"): fish, invertebrates, whales and the dugong, insects and echinoderms. A classifier
# that answers "nematode" or "jellyfish" on a crop is guessing, not seeing an animal.
IMAGENET_NOT_CAMERA_TRAP = (range(1, 8), range(70, 128), range(148, 151), range(301, 331), range(390, 398))

_INAT = re.compile(r"^([A-Z][a-z]+(?: [a-z-]+){1,2}) \(")


def category_of(label: str, spec: LabelSpec) -> str | None:
    """Yaguar category of a detector label, or None when the label is none of animal/person/vehicle."""
    if label in spec.categories:
        return spec.categories[label]
    if spec.table == "coco":
        if label in COCO_PERSON:
            return "person"
        if label in COCO_VEHICLE:
            return "vehicle"
        if label in COCO_ANIMAL:
            return "animal"
        return None
    if spec.table == "megadetector":
        return MEGADETECTOR.get(label)
    return None


def species_of(label: str, spec: LabelSpec) -> str | None:
    """Scientific name a classifier label stands for, or None when it names no taxon we know."""
    if label in spec.species:
        return spec.species[label]
    if spec.table == "inat":
        match = _INAT.match(label)
        return match.group(1) if match else None
    if spec.table == "imagenet":
        return IMAGENET_SPECIES.get(label.split(",", maxsplit=1)[0].strip().lower())
    return None


def display_label(label: str, spec: LabelSpec) -> str:
    """A short label for people: the first ImageNet synonym, the common name of an iNat label."""
    if spec.table == "imagenet":
        return label.split(",", maxsplit=1)[0].strip()
    return label


def animal_labels(labels: list[str], spec: LabelSpec) -> frozenset[str]:
    """The classifier labels that name an animal (any animal, named species or not)."""
    if spec.table == "imagenet" and IMAGENET_LAST_ANIMAL in labels:
        offset = 1 if labels[0].lower() == "background" else 0  # the 1000-label list has no background
        skipped = {index - 1 + offset for block in IMAGENET_NOT_CAMERA_TRAP for index in block}
        last = labels.index(IMAGENET_LAST_ANIMAL)
        return frozenset(labels[i] for i in range(offset, last + 1) if i not in skipped)
    if spec.table == "inat":
        return frozenset(label for label in labels if _INAT.match(label))
    return frozenset(label for label in labels if species_of(label, spec))


def shown_label(category: str, species: str | None) -> str:
    """What a box is called in our outputs (CSV, API, exports): the species or genus a classifier named,
    else the category. Never the detector's own class: a COCO "giraffe" on a jaguar is not the animal."""
    return species or category
