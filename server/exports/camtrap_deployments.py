"""Which Camtrap DP deployment a frame or an event belongs to, and the deployment rows themselves.

A camera with recorded deployments (``yaguar.server.deployments``) exports one Camtrap DP deployment per
record, with its site, habitat, camera set-up and bait; a frame taken outside every record of its camera
belongs to none and is left out (and counted). A camera without records falls back to one deployment
spanning its frames, at the camera's own position or the station's; with neither it is left out.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from yaguar.server.dashboard_config import ExportMetadata
from yaguar.server.deployments.models import Deployment
from yaguar.storage.models import Device

from .records import local_iso


@dataclass(frozen=True)
class Placement:
    key: str  # the deploymentID
    device: Device
    position: tuple[float, float]
    record: Deployment | None  # None: the fallback for a camera without records


class DeploymentIndex:
    def __init__(self, db: Session, cams: dict[str, Device], meta: ExportMetadata) -> None:
        self.meta = meta
        self.placements: dict[str, Placement] = {}
        self._records: dict[str, list[Deployment]] = {}
        for dep in db.scalars(select(Deployment).order_by(Deployment.device_id, Deployment.start)):
            if dep.device_id in cams:
                self._records.setdefault(dep.device_id, []).append(dep)
        self._starts = {cam: [d.start for d in deps] for cam, deps in self._records.items()}
        self._fallback: dict[str, str] = {}
        self.unplaced: list[str] = []
        self.outside = 0  # frames of cameras with records, taken outside all of them
        for cam, device in sorted(cams.items()):
            for dep in self._records.get(cam, []):
                key = f"{cam}-{dep.id}"
                self.placements[key] = Placement(key, device, (dep.latitude, dep.longitude), dep)
            if cam in self._records:
                continue
            position = _fallback_position(device, meta)
            if position is None:
                self.unplaced.append(cam)
            else:
                self.placements[cam] = Placement(cam, device, position, None)
                self._fallback[cam] = cam

    def key_for(self, device_id: str, when: datetime) -> str | None:
        """The deployment a frame or event taken at ``when`` belongs to, or None."""
        deps = self._records.get(device_id)
        if deps is None:
            return self._fallback.get(device_id)
        i = bisect.bisect_right(self._starts[device_id], when) - 1
        if i < 0:
            return None
        end = deps[i].end
        if end is None or when < end:
            return f"{device_id}-{deps[i].id}"
        return None

    def row(self, key: str, first: datetime, last: datetime, offset: int) -> dict[str, object]:
        place = self.placements[key]
        dep, device = place.record, place.device
        row: dict[str, object] = {
            "deploymentID": key,
            "locationID": device.id,
            "locationName": device.name or device.id,
            "latitude": round(place.position[0], 6),
            "longitude": round(place.position[1], 6),
            "coordinateUncertainty": self.meta.coordinate_uncertainty_m or "",
            "deploymentStart": local_iso(first, offset),
            "deploymentEnd": local_iso(last, offset),
            "cameraID": device.id,
        }
        if dep is None:
            own = device.latitude is not None and device.longitude is not None
            row["deploymentComments"] = "" if own else "position of the station, not of the camera"
            return row
        row.update(
            {
                "locationID": f"{device.id}@{dep.latitude:.5f},{dep.longitude:.5f}",
                "locationName": dep.site or device.name or device.id,
                "coordinateUncertainty": round(dep.uncertainty_m) if dep.uncertainty_m is not None else "",
                "deploymentStart": local_iso(dep.start, offset),
                # An open deployment ends, for the package, at its last frame.
                "deploymentEnd": local_iso(dep.end if dep.end is not None else max(last, dep.start), offset),
                "cameraModel": dep.camera_model or "",
                "cameraHeight": round(dep.camera_height_m, 2) if dep.camera_height_m is not None else "",
                "baitUse": "true" if dep.bait else "false",
                "habitat": dep.habitat or "",
                "deploymentComments": dep.comments or "",
            }
        )
        return row


def _fallback_position(device: Device, meta: ExportMetadata) -> tuple[float, float] | None:
    if device.latitude is not None and device.longitude is not None:
        return device.latitude, device.longitude
    if meta.latitude is not None and meta.longitude is not None:
        return meta.latitude, meta.longitude
    return None
