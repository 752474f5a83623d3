"""Stage two: species classifiers on crops of the animal boxes, with the region's geofencing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from yaguar.taxonomy import geofence

from .backends.options import OptionsInput
from .detector import Detection, load_backend
from .labelmap import animal_labels, display_label, species_of
from .manifest import Manifest, ManifestError
from .preprocess import fit, to_tensor

CROP_MARGIN = 0.1  # context around the box helps the classifier, as in MegaDetector's crop scripts


@dataclass(frozen=True)
class Guess:
    label: str  # the classifier's label, shortened for people
    species: str | None  # scientific name (species or genus), None when the label names no taxon
    probability: float
    animal: bool = False  # the label names an animal (ImageNet's animal classes, every iNat taxon)


class Classifier:
    def __init__(
        self,
        manifest: Manifest,
        model_dir: Path,
        backend_kind: str = "onnxruntime",
        backend_options: OptionsInput = None,
        verify_sha256: bool = True,
    ) -> None:
        if manifest.kind != "classifier":
            raise ManifestError(f"{manifest.ident} is a {manifest.kind}, not a classifier")
        self.manifest = manifest
        self.backend, _ = load_backend(manifest, model_dir, backend_kind, backend_options, verify_sha256)
        self.labels = manifest.load_labels(model_dir)
        self.animals = animal_labels(self.labels, manifest.labels)
        info = self.backend.inputs[0]
        self.input_name = manifest.input.name or info.name
        self.max_batch = 1 if info.shape[0] == 1 else 64
        classes = self.backend.outputs[0].shape[-1]
        if isinstance(classes, int) and classes - manifest.output.label_offset != len(self.labels):
            raise ManifestError(
                f"{manifest.ident}: model output has {classes} classes, "
                f"the manifest's labels have {len(self.labels)}"
            )

    @property
    def ident(self) -> str:
        return self.manifest.ident

    def classify(self, crops: list[np.ndarray], top_k: int = 3) -> list[list[Guess]]:
        """Top-k guesses for each BGR uint8 crop."""
        results: list[list[Guess]] = []
        for start in range(0, len(crops), self.max_batch):
            tensor = self.tensor(crops[start : start + self.max_batch])
            for row in self.backend.run({self.input_name: tensor})[0]:
                results.append(self._top(self._probabilities(np.asarray(row).reshape(-1)), top_k))
        return results

    def tensor(self, crops: list[np.ndarray]) -> np.ndarray:
        """The model's input for BGR uint8 crops: resized, ordered and scaled as its manifest says."""
        return to_tensor([fit(c, self.manifest.input)[0] for c in crops], self.manifest.input)

    def _probabilities(self, row: np.ndarray) -> np.ndarray:
        fmt = self.manifest.output.format
        if fmt == "quantized":
            return row.astype(np.float32) * np.float32(self.manifest.output.quant_scale)
        if fmt == "logits":
            shifted = np.exp(row - row.max())
            return shifted / shifted.sum()
        return row.astype(np.float32)

    def _top(self, probs: np.ndarray, top_k: int) -> list[Guess]:
        offset, spec = self.manifest.output.label_offset, self.manifest.labels
        guesses = []
        for index in np.argsort(probs)[::-1][:top_k]:
            label_index = int(index) - offset
            if not 0 <= label_index < len(self.labels):
                continue
            label = self.labels[label_index]
            guesses.append(
                Guess(
                    display_label(label, spec),
                    species_of(label, spec),
                    float(probs[index]),
                    label in self.animals,
                )
            )
        return guesses


def crop(image: np.ndarray, bbox: list[float], margin: float = CROP_MARGIN) -> np.ndarray:
    """The box (normalised [x, y, w, h]) cut from the image with a margin; at least 8x8 pixels."""
    height, width = image.shape[:2]
    x, y, w, h = bbox
    x1 = max(0, int((x - w * margin) * width))
    y1 = max(0, int((y - h * margin) * height))
    x2 = min(width, max(x1 + 8, int((x + w * (1 + margin)) * width)))
    y2 = min(height, max(y1 + 8, int((y + h * (1 + margin)) * height)))
    return image[y1:y2, x1:x2]


def name_species(
    image: np.ndarray,
    detections: list[Detection],
    classifiers: list[Classifier],
    allowed: frozenset[str] | None,
    seen: tuple[Classifier, dict[int, list[Guess]]] | None = None,
) -> None:
    """Fill in species on the animal detections of one image, in place.

    Every classifier sees every animal crop; the most probable guess that names a taxon, is above its
    classifier's threshold and survives geofencing wins (a bird classifier's guess on a jaguar is weak
    and loses to the general classifier, and vice versa). ``seen``: one classifier's guesses already
    made on some of these detections (the second opinion's, by ``id``), used instead of classifying
    those crops again.
    """
    animals = [d for d in detections if d.category == "animal"]
    if not animals or not classifiers:
        return
    for classifier in classifiers:
        known = seen[1] if seen is not None and seen[0] is classifier else {}
        wanted = [
            d
            for d in animals
            if not classifier.manifest.applies_to or d.label in classifier.manifest.applies_to
        ]
        new = [d for d in wanted if id(d) not in known]
        crops = [crop(image, d.bbox) for d in new]
        guessed = dict(zip(map(id, new), classifier.classify(crops) if crops else [], strict=True))
        for detection in wanted:
            guesses = known[id(detection)] if id(detection) in known else guessed[id(detection)]
            _take_species(detection, guesses, classifier, allowed)


def _take_species(
    detection: Detection, guesses: list[Guess], classifier: Classifier, allowed: frozenset[str] | None
) -> None:
    """The classifier's most probable guess that names a taxon, is above its threshold and survives
    geofencing becomes the detection's species, when it is more probable than the one it has."""
    for guess in guesses:
        if guess.species is None or guess.probability < classifier.manifest.score_threshold:
            continue
        kept, demoted = geofence(guess.species, allowed)
        if kept is None:
            continue
        if detection.species_confidence is None or guess.probability > detection.species_confidence:
            detection.species = kept
            detection.species_confidence = round(guess.probability, 4)
            detection.species_label = guess.label
            detection.classifier = classifier.ident
            if demoted:
                detection.extra["geofenced_from"] = guess.species
        return
