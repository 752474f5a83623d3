"""``yaguar train classifier``, the whole run: scan the folders, crop the animals with the detector,
embed the crops with the backbone, train and validate the head, export one ONNX file with its manifest
and model card."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..decode import DecodeError
from ..manifest import Manifest, find_manifest
from ..preprocess import fit
from .backbone import Embedder
from .crops import Cropper
from .dataset import MIN_PER_CLASS, Dataset, Sample, load_photo, scan
from .export import Report, compose, write_model
from .head import TrainedHead, train
from .taxa import in_region

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    folders: list[Path]
    out_dir: Path
    name: str
    version: str = ""  # "" : the time of training
    model_dir: Path = Path()
    manifest_dirs: list[Path] = field(default_factory=list)
    backbone: str = "mobilenet_v2_imagenet_quant"
    detector: str | None = "yolox_nano"  # None: never crop
    backend: str = "onnxruntime"
    region: str = "colombia"
    val_fraction: float = 0.25
    min_per_class: int = MIN_PER_CLASS
    threshold: float = 0.8  # the station names a species only above this probability
    progress: bool = True
    keep_crops: bool = False  # keep the crops (as the model sees them) to compare backends after


@dataclass
class Embedded:
    """The usable photos, their embeddings and class indices, and what happened on the way."""

    dataset: Dataset
    embeddings: np.ndarray
    labels: np.ndarray
    classes: list[str]
    crops: Counter[str]
    pixels: list[np.ndarray] = field(default_factory=list)  # the crops, when kept


@dataclass
class TrainResult:
    manifest: Manifest
    trained: TrainedHead
    embedded: Embedded


def embed_folders(options: TrainOptions, embedder: Embedder) -> Embedded:
    dataset = scan(options.folders)
    # Before any model loads: species with too few photos are left out now, and a run that cannot
    # reach two species stops now, with the reason.
    dataset.drop_small_classes(options.min_per_class)
    cropper = (
        Cropper(options.detector, options.model_dir, options.manifest_dirs, options.backend)
        if options.detector and any(not s.is_crop for s in dataset.samples)
        else None
    )
    usable: list[Sample] = []
    rows: list[np.ndarray] = []
    kept: list[np.ndarray] = []
    hows: list[str] = []
    for sample in tqdm(dataset.samples, desc="photos / fotos", unit="photo", disable=not options.progress):
        try:
            pixels = load_photo(sample.path)
        except DecodeError as exc:
            dataset.skip(sample.path, "corrupt", f"{exc}; skipped")
            continue
        if cropper is not None and not sample.is_crop:
            cropped = cropper.crop(pixels)
            pixels, how = cropped.pixels, cropped.how
        else:
            how = "whole"
        hows.append(how)
        rows.append(embedder.embed([pixels])[0])
        usable.append(sample)
        if options.keep_crops:
            kept.append(fit(pixels, embedder.manifest.input)[0])
    dataset.samples = usable
    dataset.drop_small_classes(options.min_per_class)  # again: corrupt photos may leave a species short
    keep = {s.path for s in dataset.samples}
    crops = Counter(how for how, s in zip(hows, usable, strict=True) if s.path in keep)
    matrix = np.stack([row for row, s in zip(rows, usable, strict=True) if s.path in keep])
    kept_crops = [p for p, s in zip(kept, usable, strict=False) if s.path in keep]
    classes = sorted(dataset.counts())
    labels = np.array([classes.index(s.species.scientific) for s in dataset.samples])
    return Embedded(dataset, matrix, labels, classes, crops, kept_crops)


def train_classifier(options: TrainOptions) -> TrainResult:
    backbone = find_manifest(options.backbone, options.manifest_dirs)
    embedder = Embedder(backbone, options.model_dir, options.backend)
    embedded = embed_folders(options, embedder)
    trained = train(embedded.embeddings, embedded.labels, embedded.classes, options.val_fraction)
    report = Report(
        sources=[str(f) for f in options.folders],
        counts=dict(embedded.dataset.counts()),
        skipped=dict(Counter(p.reason for p in embedded.dataset.problems)),
        crops=dict(embedded.crops),
        train_images=trained.train_images,
        train_seconds=trained.seconds,
        region=options.region,
        out_of_region=[c for c in embedded.classes if not in_region(c, options.region)],
        threshold=options.threshold,
    )
    version = options.version or time.strftime("%Y%m%d.%H%M%S", time.gmtime())
    model = compose(embedder.model, trained.head, options.name)
    manifest = write_model(
        options.out_dir, options.name, version, model, trained.head, trained.validation, report, backbone
    )
    log.info(
        "trained %s on %d photos of %d species: validation accuracy %.3f",
        manifest.ident,
        len(embedded.labels),
        len(embedded.classes),
        trained.validation.accuracy,
    )
    return TrainResult(manifest, trained, embedded)
