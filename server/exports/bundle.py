"""Each export as the bytes of one download, for the dashboard's Export page and the API alike."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

from sqlalchemy.orm import Session

from yaguar.server.dashboard_config import ExportMetadata

from . import camtrap_dp, csv_export, megadetector
from .records import ExportScope

CAMTRAP_FILES = ("datapackage.json", "deployments.csv", "media.csv", "observations.csv")


def camtrap_zip(db: Session, meta: ExportMetadata, scope: ExportScope) -> bytes:
    work = Path(tempfile.mkdtemp(prefix="yaguar-camtrap-"))
    try:
        camtrap_dp.write_package(db, work / "package", meta, scope)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in CAMTRAP_FILES:
                zf.write(work / "package" / name, name)
        return buffer.getvalue()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def megadetector_json(db: Session, scope: ExportScope, threshold: float | None = None) -> bytes:
    return json.dumps(megadetector.build(db, scope, threshold=threshold), indent=1).encode()


def events_csv(db: Session, scope: ExportScope) -> str:
    out = io.StringIO()
    csv_export.write_events_csv(db, out, scope)
    return out.getvalue()
