"""Which species classifiers the station runs, chosen while it runs.

``[pipeline] classifiers`` in station.toml is the start; ``yaguar-station classifiers use NAME`` (or an
admin on the dashboard) records a new choice in the database, and the running pipeline picks it up at
its next poll, without a restart (``server/pipeline/switch.py``). Every choice is kept, with who made it
and why, so the history of which model named the species is in the database beside the detections
(each of which records its own classifier, name@version).

A trained model replaces the current trained one only when its held-back validation accuracy is not
worse: ``compare`` says so, and the CLI prints the two side by side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from yaguar.engine.config import PipelineConfig
from yaguar.engine.manifest import Manifest, ManifestError, all_manifests, find_manifest
from yaguar.storage.base import Base, UTCDateTime, utcnow


class ClassifierChoice(Base):
    """One decision about the classifier list; the newest row is what the pipeline runs."""

    __tablename__ = "classifier_choices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chosen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    chosen_by: Mapped[str] = mapped_column(String(64), doc="user name, or 'cli'")
    classifiers: Mapped[str] = mapped_column(Text, doc="JSON list of classifier manifest names, in order")
    note: Mapped[str] = mapped_column(Text, default="", doc="why: the accuracies compared")


def latest_choice(session: Session) -> ClassifierChoice | None:
    return session.scalars(select(ClassifierChoice).order_by(ClassifierChoice.id.desc()).limit(1)).first()


def current_classifiers(session: Session, config: PipelineConfig) -> list[str]:
    choice = latest_choice(session)
    return list(json.loads(choice.classifiers)) if choice else list(config.classifiers)


def manifest_dirs(config: PipelineConfig) -> list[Path]:
    return [config.manifest_dir] if config.manifest_dir else []


@dataclass(frozen=True)
class Decision:
    allowed: bool
    new: Manifest
    current: Manifest | None  # the trained classifier it would replace, if any
    reason: str


def accuracy(manifest: Manifest | None) -> float | None:
    return manifest.training.validation_accuracy if manifest and manifest.training else None


def compare(new: Manifest, current: Manifest | None) -> Decision:
    """May ``new`` replace ``current``? Only a trained model with a held-back score not below the
    current one's; a current model without such a score (a stock one) sets no bar."""
    if new.kind != "classifier":
        return Decision(False, new, current, f"{new.ident} is a {new.kind}, not a classifier")
    new_acc, old_acc = accuracy(new), accuracy(current)
    if new_acc is None:
        return Decision(False, new, current, f"{new.ident} has no held-back validation score")
    if current is None or old_acc is None:
        return Decision(True, new, current, f"{new.ident}: {new_acc:.1%}; no trained model to beat")
    if new_acc < old_acc:
        return Decision(
            False,
            new,
            current,
            f"{new.ident} scores {new_acc:.1%}, worse than {current.ident}'s {old_acc:.1%}: kept the current one",
        )
    return Decision(True, new, current, f"{new.ident} {new_acc:.1%} >= {current.ident} {old_acc:.1%}")


def trained_current(names: list[str], dirs: list[Path]) -> Manifest | None:
    """The first trained classifier of the current list: the one a new trained model replaces."""
    for name in names:
        try:
            manifest = find_manifest(name, dirs)
        except ManifestError:
            continue
        if manifest.training is not None:
            return manifest
    return None


def propose(
    session: Session, config: PipelineConfig, name: str, also: list[str] | None = None
) -> tuple[Decision, list[str]]:
    """The decision about using ``name`` (with the classifiers ``also`` beside it), and the list it
    would give; every name must have a manifest, so a typo is refused before it is recorded."""
    dirs = manifest_dirs(config)
    new = find_manifest(name, dirs)
    for other in also or []:
        find_manifest(other, dirs)
    current = trained_current(current_classifiers(session, config), dirs)
    decision = compare(new, current)
    return decision, [new.name, *[n for n in also or [] if n != new.name]]


def record(session: Session, names: list[str], by: str, note: str) -> ClassifierChoice:
    choice = ClassifierChoice(chosen_by=by[:64], classifiers=json.dumps(names), note=note)
    session.add(choice)
    session.flush()
    return choice


def trained_models(config: PipelineConfig) -> list[Manifest]:
    """Every trained classifier the station can see (its manifest folder), newest first."""
    found = [m for _, m in all_manifests(manifest_dirs(config)) if isinstance(m, Manifest) and m.training]
    return sorted(found, key=lambda m: m.training.trained_at if m.training else "", reverse=True)


def side_by_side(current: Manifest | None, new: Manifest) -> list[str]:
    """Two columns a ranger can read: the model in use and the candidate."""

    def column(m: Manifest | None) -> list[str]:
        if m is None:
            return ["(none trained)", "-", "-", "-", "-"]
        t = m.training
        return [
            m.ident,
            str(len(t.taxa)) if t else "-",
            f"{t.validation_accuracy:.1%}" if t else "(not measured)",
            str(t.validation_images) if t else "-",
            t.trained_at if t else "-",
        ]

    rows = ["model / modelo", "species / especies", "validation / validación", "held back", "trained"]
    left, right = column(current), column(new)
    lines = [f"{'':26} {'current / actual':34} {'new / nuevo':34}"]
    lines += [f"{r:26} {a:34} {b:34}" for r, a, b in zip(rows, left, right, strict=True)]
    return lines
