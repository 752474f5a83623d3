"""The manifest of a model's int8 copy, and manifests written as TOML, for what ``yaguar models
quantize`` writes beside the int8 file (``quantize.py``, ``quantize_classifier.py``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .manifest import Manifest, file_sha256


def int8_copy(manifest: Manifest, file: str, label_names: list[str], **more: object) -> Manifest:
    """The manifest of ``manifest``'s int8 copy in ``file`` while it is made: its labels inline, no
    checksum or download address of the float model's (``more``: other fields to change)."""
    labels = manifest.labels.model_copy(
        update={"file": None, "url": None, "sha256": None, "sha256_from": None, "names": label_names}
    )
    return manifest.model_copy(
        update={
            "name": f"{manifest.name}_int8",
            "file": file,
            "sha256": None,
            "url": None,
            "labels": labels,
            **more,
        }
    )


def int8_written(
    copy: Manifest, source: Manifest, model_path: Path, calibration: list[Path], extra: str = ""
) -> Manifest:
    """``copy`` once its model is written to ``model_path``: its checksum, version and how it was made
    (``extra``: further options of the command)."""
    return copy.model_copy(
        update={
            "version": f"{source.version}-int8",
            "sha256": file_sha256(model_path),
            "description": f"{source.ident} quantised to int8 (QDQ, per-channel weights) by yaguar",
            "export_command": f"yaguar models quantize {source.name} --calibration "
            + " ".join(str(c) for c in calibration)
            + extra,
        }
    )


def _toml_value(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON strings, numbers, booleans, lists are TOML


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _table(prefix: str, data: dict) -> list[str]:
    """``data``'s plain values as ``key = value`` lines, then its dicts as sub-tables of ``prefix``."""

    def is_tables(v: object) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(i, dict) for i in v)

    lines = [
        f"{_toml_key(k)} = {_toml_value(v)}"
        for k, v in data.items()
        if not isinstance(v, dict) and not is_tables(v)
    ]
    for key, value in data.items():
        if isinstance(value, dict) and value:
            lines += ["", f"[{prefix}{key}]", *_table(f"{prefix}{key}.", value)]
        elif is_tables(value):  # e.g. a trained classifier's [[training.taxa]]
            for item in value:
                lines += ["", f"[[{prefix}{key}]]", *_table(f"{prefix}{key}.", item)]
    return lines


def manifest_toml(m: Manifest) -> str:
    """The manifest as TOML (scalars first, then one table per section), after a comment line."""
    lines = [
        "# Made by `yaguar models quantize` (see the model card beside it).",
        *_table("", m.model_dump(exclude_none=True)),
    ]
    return "\n".join(lines) + "\n"
