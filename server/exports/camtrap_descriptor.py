"""The ``datapackage.json`` of a Camtrap DP 1.0.2 export: the standard's profile and table schemas by
their published URLs, the project, contributors, licences, and the spatial, temporal and taxonomic
coverage of what was exported."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from yaguar.server.dashboard_config import ExportMetadata

VERSION = "1.0.2"
BASE = f"https://raw.githubusercontent.com/tdwg/camtrap-dp/{VERSION}"
PROFILE_URL = f"{BASE}/camtrap-dp-profile.json"
SCHEMA_URLS = {name: f"{BASE}/{name}-table-schema.json" for name in ("deployments", "media", "observations")}


def package_descriptor(
    meta: ExportMetadata,
    now: datetime,
    spans: dict[str, tuple[datetime, datetime, int]],
    placed: dict[str, tuple[float, float]],
    capture_methods: set[str],
    species: set[str],
) -> dict[str, Any]:
    used = [placed[d] for d in spans] or list(placed.values())
    starts = [s[0] for s in spans.values()] or [now]
    ends = [s[1] for s in spans.values()] or [now]
    contributor: dict[str, Any] = {"title": meta.contributor, "role": "contact"}
    if meta.contributor_email:
        contributor["email"] = meta.contributor_email
    if meta.organization:
        contributor["organization"] = meta.organization
    project: dict[str, Any] = {
        "title": meta.project_title,
        "samplingDesign": meta.sampling_design,
        "captureMethod": sorted(capture_methods) or ["activityDetection"],
        "individualAnimals": False,
        "observationLevel": ["media", "event"],
    }
    if meta.project_acronym:
        project["acronym"] = meta.project_acronym
    if meta.project_description:
        project["description"] = meta.project_description
    return {
        "profile": PROFILE_URL,
        "name": f"yaguar-{now:%Y%m%d-%H%M%S}",
        "id": str(uuid.uuid4()),
        "created": now.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "title": f"{meta.project_title}: camera-trap data",
        "contributors": [contributor],
        "licenses": [
            {"name": meta.license, "scope": "data"},
            {"name": meta.license, "scope": "media"},
        ],
        "sources": [{"title": "Yaguar station", "version": "0.1.0"}],
        "project": project,
        "spatial": _bbox_geometry(used),
        "temporal": {"start": min(starts).date().isoformat(), "end": max(ends).date().isoformat()},
        "taxonomic": [{"scientificName": name} for name in sorted(species)],
        "resources": [
            {
                "name": name,
                "path": f"{name}.csv",
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": url,
            }
            for name, url in SCHEMA_URLS.items()
        ],
    }


def _bbox_geometry(points: list[tuple[float, float]]) -> dict[str, Any]:
    """GeoJSON polygon around the cameras (a point when there is only one position)."""
    if not points:
        return {
            "type": "Polygon",
            "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]],
        }
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    if len(set(points)) == 1:
        return {"type": "Point", "coordinates": [lons[0], lats[0]]}
    w, e, s, n = min(lons), max(lons), min(lats), max(lats)
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
