"""Checkpoints of a long ``yaguar detect`` run, so a crash after 30,000 images loses minutes, not days.

A checkpoint is the output so far (image entries, CSV rows, species ids, video summaries) and the
names of the finished units (a sequence of pictures, or one video), written atomically beside the
output. Checkpoints fall only between units: the motion filter's state never spans a unit, so a run
resumed from a checkpoint computes exactly what the uninterrupted run would have. ``--resume`` refuses
a checkpoint made with other models or settings, with a one-line reason.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yaguar.durable import atomic_write

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed; str() says why and what to do."""


@dataclass
class Checkpoint:
    fingerprint: dict[str, Any]  # models and settings that change results
    done: list[str] = field(default_factory=list)  # finished unit keys, in order
    images: list[dict[str, Any]] = field(default_factory=list)
    csv_rows: list[dict[str, Any]] = field(default_factory=list)
    species_ids: dict[str, str] = field(default_factory=dict)
    videos: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "version": CHECKPOINT_VERSION,
                "fingerprint": self.fingerprint,
                "done": self.done,
                "images": self.images,
                "csv_rows": self.csv_rows,
                "species_ids": self.species_ids,
                "videos": self.videos,
            }
        ).encode("utf-8")


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".checkpoint")


def save(path: Path, checkpoint: Checkpoint) -> None:
    atomic_write(path, checkpoint.to_json())
    log.info("checkpoint: %d units, %d entries in %s", len(checkpoint.done), len(checkpoint.images), path)


def load(path: Path, fingerprint: dict[str, Any]) -> Checkpoint:
    """The checkpoint to resume from; CheckpointError when it is unreadable or from other settings."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}: run without --resume to start over") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"the checkpoint {path} cannot be read ({exc}); delete it to start over"
        ) from None
    if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"the checkpoint {path} is from another version; delete it to start over")
    if data.get("fingerprint") != fingerprint:
        theirs = data.get("fingerprint") or {}
        changed = sorted(k for k in set(theirs) | set(fingerprint) if theirs.get(k) != fingerprint.get(k))
        raise CheckpointError(
            f"the checkpoint {path} was made with other settings ({', '.join(changed)}); "
            "use the same ones, or delete it to start over"
        )
    return Checkpoint(
        fingerprint=fingerprint,
        done=list(data["done"]),
        images=list(data["images"]),
        csv_rows=list(data["csv_rows"]),
        species_ids=dict(data["species_ids"]),
        videos=list(data["videos"]),
    )
