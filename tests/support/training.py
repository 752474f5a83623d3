"""Training folders made from the shared images: one sub-folder per species, named as a ranger would
(scientific or common name), holding links to the real photos (never copies)."""

from __future__ import annotations

from pathlib import Path

from yaguar.engine.training.trainer import TrainOptions, TrainResult, train_classifier

# The file name of each shared camera-trap photo ends with its species; the folder name it trains as.
CAMERA_TRAP_SPECIES = {
    "deer": "Odocoileus virginianus",
    "cougar": "puma",
    "fox": "Vulpes vulpes",
    "wolf": "Canis lupus",
    "bobcat": "lince rojo",
}


def link(photo: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / photo.name).symlink_to(photo)


def shared_species_folder(shared: Path, out: Path) -> Path:
    """jaguar (11 photos from three sites), grey heron (a 10-frame night burst), and the camera-trap
    species (1-2 photos each, which training must leave out: fewer than 3)."""
    for photo in sorted((shared / "images" / "jaguar").glob("*.jpg")):
        link(photo, out / "jaguar")
    for photo in sorted((shared / "camtrap-dp-1.0.2" / "example" / "media").glob("*.JPG")):
        link(photo, out / "Ardea cinerea")
    for photo in sorted((shared / "images" / "camera-trap").iterdir()):
        stem = photo.stem.rsplit("_", maxsplit=1)[-1]
        if stem in CAMERA_TRAP_SPECIES:
            link(photo, out / CAMERA_TRAP_SPECIES[stem])
    return out


def train_on_shared(
    shared: Path, work: Path, name: str = "especies_prueba", keep_crops: bool = False
) -> TrainResult:
    """Train a classifier on ``shared_species_folder`` with the shared models, into ``work/model``."""
    options = TrainOptions(
        folders=[shared_species_folder(shared, work / "species")],
        out_dir=work / "model",
        name=name,
        version="1",
        model_dir=shared / "models",
        progress=False,
        keep_crops=keep_crops,
    )
    return train_classifier(options)
