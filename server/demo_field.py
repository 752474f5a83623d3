"""The demo's field story: alert rules (big cats, people) that write to the log and the Alerts page
(SMS off), the simulated cameras placed on a small grid so the map shows them, heartbeats from each
running camera, and the device alert that follows when one camera is stopped."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from yaguar.protocol import Heartbeat, Kind

from .simulator import COLOMBIA, FieldCamera

# A camera grid in the Paraguayan Chaco, about 1.5 km between cameras.
GRID_ORIGIN = (-22.10, -60.50)
GRID_STEP_DEG = 0.0135
BIG_CATS = ["Panthera onca", "Puma concolor", "Leopardus pardalis", "Leopardus wiedii"]


def alerts_section(offline_after_s: float) -> dict[str, Any]:
    """Rules that show the whole story without a phone: every message goes to the log channel."""
    return {
        "enabled": True,
        "rules": [
            {
                "name": "big-cats",
                "species": BIG_CATS,
                "min_confidence": 0.3,
                "severity": "high",
                "channels": ["log"],
            },
            {"name": "people", "categories": ["person"], "min_confidence": 0.3, "channels": ["log"]},
        ],
        "flood": {"cooldown_s": 120, "group_window_s": 60},
        "devices": {"offline_after_s": offline_after_s, "check_interval_s": 2.0, "channels": ["log"]},
    }


def place_cameras(station: Any, device_ids: list[str]) -> None:
    """One deployment per camera on a 3-wide grid (the map and the analysis need positions)."""
    from yaguar.storage.models import Device

    from .deployments import records

    now = datetime.now(UTC)
    with station.session_factory.begin() as db:
        for i, device_id in enumerate(device_ids):
            if db.get(Device, device_id) is None:
                db.add(Device(id=device_id, name=f"Sendero {i + 1:02d}", first_seen=now))
                db.flush()
            lat = GRID_ORIGIN[0] - (i // 3) * GRID_STEP_DEG
            lon = GRID_ORIGIN[1] + (i % 3) * GRID_STEP_DEG
            if not records.deployments_of(db, device_id):
                records.place(db, device_id, round(lat, 5), round(lon, 5), now, "demo")


class Heartbeats:
    """Each running camera says it is alive every ``interval_s``, as the agent's health loop does."""

    def __init__(self, cameras: list[FieldCamera], interval_s: float) -> None:
        self.cameras = list(cameras)
        self.interval_s = interval_s
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-heartbeats", daemon=True)

    def start(self) -> Heartbeats:
        self._thread.start()
        return self

    def forget(self, camera: FieldCamera) -> None:
        if camera in self.cameras:
            self.cameras.remove(camera)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            for camera in list(self.cameras):
                camera.publisher.publish(Kind.HEARTBEAT, self._beat(camera))
            self._stop.wait(self.interval_s)

    def _beat(self, camera: FieldCamera) -> Heartbeat:
        return Heartbeat(
            device=camera.device_id,
            sent_at=datetime.now(COLOMBIA),
            uptime_s=round(time.monotonic() - self.started, 1),
            agent_version="demo",
            spool_depth=camera.spool.depth,
            spool_bytes=0,
            frames_captured=camera.captured,
            frames_sent=camera.captured - camera.spool.depth,
            frames_evicted=0,
            battery_v=12.6,
            disk_free_bytes=20_000_000_000,
            clock_synced=True,
        )
