"""Helpers for the dashboard tests: real frames and events in the station's database, users, and a
browser-like HTTP client that logs in and sends forms with their CSRF token."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import requests
from sqlalchemy.orm import Session, sessionmaker

from tests.support.rows import media_row
from yaguar.server.dashboard.users import create_user
from yaguar.storage.models import Detection, Device, Event, Heartbeat, Media

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Real camera-trap frames with their MegaDetector v5 boxes (shared/data/reference).
FRAMES = {
    "2021-06-30_SYFR0218_cougar.JPG": "Puma concolor",
    "IMAG0107_deer.JPG": "Odocoileus virginianus",
    "B012_2021-05-27_human.jpg": None,
    "IMAG0031_wolf.JPG": "Canis lupus",
    "2021-08-08_RCNX0063_fox.JPG": "Vulpes vulpes",
}


def reference_boxes(shared_data: Path) -> dict[str, list[dict]]:
    return json.loads((shared_data / "reference" / "megadetector_v5_boxes.json").read_text())["images"]


def add_user(sessions: sessionmaker[Session], username: str, role: str) -> int:
    with sessions() as db, db.begin():
        return create_user(db, username, PASSWORD, role).id


def seed(
    sessions: sessionmaker[Session],
    media_root: Path,
    shared_data: Path,
    events: int = 5,
    devices: tuple[str, ...] = ("cam-01", "cam-02"),
    start: datetime | None = None,
) -> list[int]:
    """``events`` events over ``devices``, each one real frame (copied into the media root) with its
    reference boxes; returns the event ids, oldest first."""
    boxes = reference_boxes(shared_data)
    names = list(FRAMES)
    start = start or datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    sizes = {}
    for name in names:
        target = media_root / "seed" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copyfile(shared_data / "images" / "camera-trap" / name, target)
        height, width = cv2.imread(str(target), cv2.IMREAD_REDUCED_GRAYSCALE_8).shape[:2]
        sizes[name] = (width * 8, height * 8)
    ids = []
    with sessions() as db, db.begin():
        for device_id in devices:
            if db.get(Device, device_id) is None:
                db.add(
                    Device(
                        id=device_id,
                        name=f"Camera {device_id[-2:]}",
                        status="online",
                        last_seen=start,
                        latitude=-22.1,
                        longitude=-60.5,
                    )
                )
        db.flush()
        base_seq = (db.query(Media).count() or 0) + 1
        for i in range(events):
            name = names[i % len(names)]
            device_id = devices[i % len(devices)]
            when = start + timedelta(minutes=10 * i)
            dets = boxes.get(name, [])
            category = dets[0]["category"] if dets else "blank"
            species = FRAMES[name] if category == "animal" else None
            event = Event(
                device_id=device_id,
                started_at=when,
                ended_at=when + timedelta(seconds=2),
                utc_offset_min=-180,
                frame_count=1,
                category=category,
                species=species,
                count=len(dets),
                confidence=dets[0]["conf"] if dets else 0.0,
                model="yolox_nano@1",
                closed=True,
            )
            db.add(event)
            db.flush()
            width, height = sizes[name]
            media = media_row(
                device_id,
                base_seq + i,
                when,
                f"seed/{name}",
                agent_event_id=f"b{i}",
                utc_offset_min=-180,
                width=width,
                height=height,
                process_state="done",
                event_id=event.id,
            )
            db.add(media)
            db.flush()
            for det in dets:
                x, y, w, h = det["bbox"]
                db.add(
                    Detection(
                        media_id=media.id,
                        model="yolox_nano@1",
                        category=det["category"],
                        label=det["category"],
                        confidence=det["conf"],
                        x=x,
                        y=y,
                        w=w,
                        h=h,
                        species=species,
                        species_confidence=0.8 if species else None,
                        classifier="inat@1" if species else None,
                    )
                )
            ids.append(event.id)
    return ids


def add_heartbeat(sessions: sessionmaker[Session], device_id: str, payload: dict, drift_s: float) -> None:
    now = datetime.now(UTC)
    with sessions() as db, db.begin():
        device = db.get(Device, device_id)
        device.last_heartbeat = payload
        db.add(
            Heartbeat(
                device_id=device_id,
                sent_at=now + timedelta(seconds=drift_s),
                received_at=now,
                payload=payload,
            )
        )


class WebClient:
    """requests.Session that follows the site like a browser: log in, read the CSRF token, post forms."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.http = requests.Session()
        self.token: str | None = None

    def get(self, path: str, **kw) -> requests.Response:
        response = self.http.get(self.base + path, timeout=20, **kw)
        if match := CSRF.search(response.text if "html" in response.headers.get("Content-Type", "") else ""):
            self.token = match.group(1)
        return response

    def post(self, path: str, data: dict, csrf: bool = True, **kw) -> requests.Response:
        if csrf:
            if self.token is None:
                self.get("/login")
            data = {"csrf_token": self.token, **data}
        response = self.http.post(self.base + path, data=data, timeout=20, **kw)
        if match := CSRF.search(response.text):
            self.token = match.group(1)
        return response

    def login(self, username: str, password: str = PASSWORD) -> requests.Response:
        self.get("/login")
        response = self.post("/login", {"username": username, "password": password, "next": "/"})
        assert response.status_code == 200, response.text[:500]
        return response
