"""Species classifiers (int8 QDQ MobileNetV2, uint8 NHWC) on real images, the two-stage path, geofencing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.engine import read_bgr
from yaguar.engine.classifier import Classifier, crop, name_species
from yaguar.engine.detector import Detection, Detector
from yaguar.engine.manifest import find_manifest
from yaguar.taxonomy import common_name, geofence, region_species


@pytest.fixture(scope="session")
def imagenet(models_dir: Path) -> Classifier:
    return Classifier(find_manifest("mobilenet_v2_imagenet_quant"), models_dir)


@pytest.fixture(scope="session")
def birds(models_dir: Path) -> Classifier:
    return Classifier(find_manifest("mobilenet_v2_inat_bird_quant"), models_dir)


def test_bird_classifier_names_the_owl_and_the_parrot(birds: Classifier, images: Path) -> None:
    owl, parrot = birds.classify(
        [read_bgr(images / "misc" / "owl.jpg"), read_bgr(images / "misc" / "parrot.jpg")]
    )
    assert "Owl" in owl[0].label and owl[0].probability > 0.5
    assert owl[0].species == "Athene cunicularia"
    assert parrot[0].species == "Ara macao" and "Macaw" in parrot[0].label


def test_imagenet_classifier_names_the_parrot_and_the_cat(imagenet: Classifier, images: Path) -> None:
    parrot, cat = imagenet.classify(
        [read_bgr(images / "misc" / "parrot.jpg"), read_bgr(images / "misc" / "cat_720p.jpg")]
    )
    assert parrot[0].label == "macaw" and parrot[0].species == "Ara" and parrot[0].probability > 0.9
    assert "cat" in cat[0].label
    assert sum(g.probability for g in parrot) <= 1.01  # quantized probabilities, value / 256


def test_two_stages_name_the_cougar(
    models_dir: Path, images: Path, imagenet: Classifier, birds: Classifier
) -> None:
    detector = Detector(find_manifest("yolox_nano"), models_dir)
    image = read_bgr(images / "camera-trap" / "IMAG1065_cougar.JPG", 4)
    detections = detector.detect([image])[0]
    assert any(d.category == "animal" for d in detections)
    name_species(image, detections, [imagenet, birds], region_species("colombia"))
    best = max((d for d in detections if d.species), key=lambda d: d.species_confidence or 0)
    assert best.species == "Puma concolor"
    assert best.classifier == "mobilenet_v2_imagenet_quant@1.0"
    assert common_name(best.species, "es") == "puma"


def test_geofencing_demotes_species_that_do_not_occur_here(birds: Classifier, images: Path) -> None:
    owl = read_bgr(images / "misc" / "owl.jpg")
    detection = Detection("animal", "bird", 0.9, [0.0, 0.0, 1.0, 1.0])
    name_species(owl, [detection], [birds], region_species("colombia"))
    # the burrowing owl is not on the Colombian list and neither is its genus: no species is kept
    assert detection.species != "Athene cunicularia"
    unfenced = Detection("animal", "bird", 0.9, [0.0, 0.0, 1.0, 1.0])
    name_species(owl, [unfenced], [birds], None)
    assert unfenced.species == "Athene cunicularia"


def test_geofence_rolls_up_to_a_genus_of_the_region() -> None:
    allowed = region_species("colombia")
    assert geofence("Panthera onca", allowed) == ("Panthera onca", False)
    assert geofence("Strix nebulosa", allowed) == ("Strix", True)
    assert geofence("Canis lupus", allowed) == (None, True)
    assert geofence("Canis lupus", None) == ("Canis lupus", False)
    assert geofence("Cathartidae", allowed) == ("Cathartidae", False)  # ImageNet's "vulture": a family
    assert geofence("Cathartidae", frozenset({"Panthera onca"})) == (None, True)
    assert common_name("Panthera onca", "en") == "jaguar"
    assert common_name("Tapirus terrestris", "es") == "danta"
    assert common_name("Sarcoramphus papa", "en") == "king vulture"
    with pytest.raises(ValueError, match="unknown region"):
        region_species("atlantis")


def test_crop_keeps_a_margin_and_stays_inside() -> None:
    import numpy as np

    image = np.zeros((100, 200, 3), np.uint8)
    assert crop(image, [0.25, 0.25, 0.5, 0.5]).shape == (60, 120, 3)
    # a box at the corner: the margin is clipped at the image's edge
    assert crop(image, [0.95, 0.95, 0.05, 0.05]).shape[:2] == (6, 11)
