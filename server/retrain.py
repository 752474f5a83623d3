"""Retraining from the rangers' reviews (CLI or dashboard): export the reviewed boxes as a training
folder, train a new classifier on them (and on any other folders, e.g. an iNaturalist download) under
a new name, and switch to it only when its held-back score is not worse than the current model's."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from yaguar.engine.analyser import resolve_model_dir

from .classifier_choice import Decision, propose, record
from .config import StationConfig
from .exports.training_folder import TrainingExport, write_training_folder

if TYPE_CHECKING:
    from yaguar.engine.training.trainer import TrainResult

log = logging.getLogger(__name__)


class RetrainError(RuntimeError):
    """Retraining cannot start; the message says what to set."""


@dataclass(frozen=True)
class Retrained:
    export: TrainingExport
    result: TrainResult
    decision: Decision
    switched: bool


def work_dir(config: StationConfig) -> Path:
    return Path(config.storage.media_root).resolve().parent / "training"


def export_reviews(sessions: sessionmaker[Session], config: StationConfig, out: Path) -> TrainingExport:
    """A fresh export: boxes whose review changed since the last one must not keep their old folder."""
    fresh = out.with_name(out.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    with sessions() as session:
        export = write_training_folder(session, Path(config.storage.media_root), fresh)
    shutil.rmtree(out, ignore_errors=True)
    fresh.replace(out)
    return export


def retrain(
    sessions: sessionmaker[Session],
    config: StationConfig,
    base_name: str,
    folders: list[Path],
    by: str,
    use: bool,
    progress: bool = False,
) -> Retrained:
    # scikit-learn takes seconds to import: the station and its other commands never pay for it
    from yaguar.engine.training.trainer import TrainOptions, train_classifier

    pipeline = config.pipeline
    if pipeline.manifest_dir is None:
        raise RetrainError("set [pipeline] manifest_dir in station.toml: trained models are kept there")
    reviews = work_dir(config) / "reviews"
    export = export_reviews(sessions, config, reviews)
    name = f"{base_name}_{time.strftime('%Y%m%d_%H%M%S', time.gmtime())}"  # never overwrites a model in use
    options = TrainOptions(
        folders=[reviews, *folders],
        out_dir=Path(pipeline.manifest_dir),
        name=name,
        version="1",
        model_dir=resolve_model_dir(pipeline),
        manifest_dirs=[Path(pipeline.manifest_dir)],
        backend="onnxruntime" if pipeline.backend == "auto" else pipeline.backend,
        region=pipeline.region,
        progress=progress,
    )
    result = train_classifier(options)
    with sessions.begin() as session:
        decision, names = propose(session, pipeline, name)
        switched = use and decision.allowed
        if switched:
            record(session, names, by, f"retrained from reviews: {decision.reason}")
    log.info("retrained %s by %s: %s (switched: %s)", result.manifest.ident, by, decision.reason, switched)
    return Retrained(export, result, decision, switched)
