"""Training folders: one sub-folder per species, photos inside. Several folders (an iNaturalist
download, SD-card crops, the dashboard's reviewed events) merge by taxon.

Nothing here stops a run on one bad file: a non-image file, a photo that does not decode, a folder
that names no taxon, an empty folder and a species with too few photos are each skipped and recorded
as a ``Problem`` with a one-line reason. Only a run left with fewer than two species stops, with a
``TrainingError`` that says what to add.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from yaguar.taxonomy import Species

from ..decode import DecodeError, decode_jpeg
from .taxa import NotATaxonError, resolve

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
MIN_PER_CLASS = 3  # a species needs one photo to validate on and two to learn from
CROP_MARKER = ".yaguar-crops"  # a folder whose photos are already crops of one animal (review export)


def missing_extra(exc: ImportError) -> str:
    """What to do when the ``train`` extra (scikit-learn, pyinaturalist) is not installed."""
    package = (exc.name or str(exc)).split(".")[0]
    return f"{package} is not installed: install Yaguar's training extra (pip install 'yaguar[train]')"


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what to do, in one line."""


@dataclass(frozen=True)
class Sample:
    path: Path
    species: Species
    is_crop: bool  # already a crop of one animal: the detector is not run on it


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str  # short code, counted in the model card: not_image, corrupt, duplicate, not_taxon, empty,
    # too_few
    message: str


@dataclass
class Dataset:
    samples: list[Sample] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(s.species.scientific for s in self.samples)

    def skip(self, path: Path, reason: str, message: str) -> None:
        log.warning("training data: %s", message)
        self.problems.append(Problem(path, reason, message))

    def require_two_species(self, minimum: int = MIN_PER_CLASS) -> None:
        """Stop, with what to add, unless two species have ``minimum`` photos or more."""
        enough = sorted(name for name, count in self.counts().items() if count >= minimum)
        if len(enough) < 2:
            have = f"only {enough[0]}" if enough else "none"
            raise TrainingError(
                f"a classifier needs at least two species with {minimum} or more usable photos each; "
                f"there is {have}: add a folder for another species"
            )

    def drop_small_classes(self, minimum: int = MIN_PER_CLASS) -> None:
        """Leave out species with fewer than ``minimum`` usable photos, then insist on two species."""
        counts = self.counts()
        for name, count in sorted(counts.items()):
            if count < minimum:
                self.skip(
                    Path(name),
                    "too_few",
                    f"{name}: only {count} usable photo(s), at least {minimum} are needed; left out",
                )
        self.samples = [s for s in self.samples if counts[s.species.scientific] >= minimum]
        self.require_two_species(minimum)


def scan(folders: list[Path]) -> Dataset:
    """Find the photos of each species folder; what cannot be used is recorded, not fatal."""
    data = Dataset()
    seen: dict[str, Path] = {}  # content hash -> first path: a copy would leak into validation
    for root in map(Path, folders):
        if not root.is_dir():
            raise TrainingError(f"{root} is not a folder: give folders with one sub-folder per species")
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                species = resolve(folder.name)
            except NotATaxonError as exc:
                data.skip(folder, "not_taxon", f"{folder}: {exc}; left out")
                continue
            is_crop = (folder / CROP_MARKER).exists() or (root / CROP_MARKER).exists()
            found = 0
            for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    data.skip(path, "not_image", f"{path}: not a JPEG or PNG photo; skipped")
                    continue
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                if digest in seen:
                    data.skip(path, "duplicate", f"{path}: the same photo as {seen[digest]}; skipped")
                    continue
                seen[digest] = path
                data.samples.append(Sample(path, species, is_crop))
                found += 1
            if not found:
                data.skip(folder, "empty", f"{folder}: no photos in this species folder; left out")
    return data


def load_photo(path: Path, min_side: int = 448) -> np.ndarray:
    """A photo as BGR uint8, reduced at decode where it is much bigger than the models need."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DecodeError("unreadable", f"{path}: cannot read ({exc.strerror})") from None
    if raw[:2] == b"\xff\xd8" or path.suffix.lower() in {".jpg", ".jpeg"}:
        try:
            return decode_jpeg(raw, min_side=min_side).pixels
        except DecodeError as exc:
            raise DecodeError(exc.reason, f"{path}: {exc}") from None
    pixels = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise DecodeError("corrupt_image", f"{path}: the image could not be decoded")
    return pixels
