"""Cutting the animal out of a whole photo with the station's own detector, so the head learns from
what it will see at the station: the detector's animal crops, with the same margin."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..classifier import crop
from ..detector import Detector
from ..manifest import find_manifest

WHOLE_PHOTO = 0.8  # a box this big (of width and height) means the photo already is a crop


@dataclass(frozen=True)
class Cropped:
    pixels: np.ndarray
    how: str  # "detector": the best animal box; "whole": a crop already, or no animal was found


class Cropper:
    def __init__(
        self,
        detector: str,
        model_dir: Path,
        manifest_dirs: list[Path] | None,
        backend_kind: str = "onnxruntime",
        backend_options: dict[str, object] | None = None,
    ) -> None:
        self.detector = Detector(
            find_manifest(detector, manifest_dirs), model_dir, backend_kind, backend_options
        )

    def crop(self, image: np.ndarray) -> Cropped:
        """The most confident animal box with the classifier's margin; the whole photo when the
        detector finds no animal (a close-up) or the animal fills the frame."""
        animals = [d for d in self.detector.detect([image])[0] if d.category == "animal"]
        if not animals:
            return Cropped(image, "whole")
        best = max(animals, key=lambda d: d.confidence)
        if best.bbox[2] >= WHOLE_PHOTO and best.bbox[3] >= WHOLE_PHOTO:
            return Cropped(image, "whole")
        return Cropped(crop(image, best.bbox), "detector")
