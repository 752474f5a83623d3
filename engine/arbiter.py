"""A second opinion on the boxes the detector is unsure of, from the general crop classifier.

A COCO detector on a camera-trap frame writes weak boxes on stumps and rocks, and calls an infrared fox
a "person". A box at or above ``sure`` (the alert threshold) stands as it is. A weaker box is shown to
the crop classifier (ImageNet MobileNetV2 at the station), whose top guess decides:

- it recognises nothing (top probability below ``min_probability``): the box is dropped;
- it sees an animal: the box is an animal, whatever COCO class the detector gave it;
- it sees a thing that is not an animal: a person or vehicle box keeps its category, an animal box is
  dropped (a log, not an animal).

A box with a label a camera trap does not see (``implausible``: an aeroplane, a train) is weak whatever
its confidence, and stays only as an animal. A sure person or vehicle box is shown to it too (an infrared cougar can be a confident "person"): it
becomes an animal only when the classifier is as sure (``sure``) that it sees an animal; it is never
dropped.
"""

from __future__ import annotations

import logging

import numpy as np

from .classifier import Classifier, Guess, crop
from .detector import Detection

log = logging.getLogger(__name__)


def general_classifier(classifiers: list[Classifier]) -> Classifier | None:
    """The classifier that knows animals from things (ImageNet), the one that can arbitrate."""
    return next((c for c in classifiers if c.manifest.labels.table == "imagenet" and c.animals), None)


def second_opinion(
    image: np.ndarray,
    detections: list[Detection],
    arbiter: Classifier,
    sure: float,
    min_probability: float,
    implausible: frozenset[str] = frozenset(),
    seen: dict[int, list[Guess]] | None = None,
) -> list[Detection]:
    """The detections of one image after the arbiter's say on the weak boxes and on the sure boxes that
    are not animals (see the module docstring); sure animal boxes stay as they are. The arbiter's
    guesses go into ``seen`` (by ``id`` of the detection), so that naming the species does not classify
    the same crop again."""
    checked = [d for d in detections if d.confidence < sure or d.category != "animal"]
    if not checked or min_probability <= 0:
        return detections
    guesses = arbiter.classify([crop(image, d.bbox) for d in checked])
    verdicts: dict[int, bool] = {}
    for detection, top in zip(checked, guesses, strict=True):
        if seen is not None:
            seen[id(detection)] = top
        guess = top[0] if top else None
        if detection.label in implausible:
            verdicts[id(detection)] = (
                guess is not None and guess.animal and guess.probability >= min_probability
            )
            if verdicts[id(detection)]:
                detection.extra["detector_category"] = detection.category
                detection.category = "animal"
            continue
        if detection.confidence >= sure:
            if guess is not None and guess.animal and guess.probability >= sure:
                detection.extra["detector_category"] = detection.category
                detection.extra["second_opinion"] = f"{guess.label} {guess.probability:.2f}"
                detection.category = "animal"
            continue
        keep = guess is not None and guess.probability >= min_probability
        if keep and guess is not None:
            if guess.animal and detection.category != "animal":
                detection.extra["detector_category"] = detection.category
                detection.category = "animal"
            elif not guess.animal and detection.category == "animal":
                keep = False
            detection.extra["second_opinion"] = f"{guess.label} {guess.probability:.2f}"
        verdicts[id(detection)] = keep
    return [d for d in detections if verdicts.get(id(d), True)]
