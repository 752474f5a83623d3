"""A fake iNaturalist API on 127.0.0.1 that answers ``GET /v1/observations`` in the real response shape
(v1: total_results, page, per_page, results with id, uri, observed_on, place_guess, location, taxon,
user, photos with license_code, url and attribution), pages by ``id_above``, and serves the photos.
Faults are scripted per request: a 429 (with or without Retry-After) or a dropped connection."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


def observation(oid: int, taxon: str, photos: list[dict[str, Any]], base: str) -> dict[str, Any]:
    for photo in photos:
        if photo.get("url") == "":
            photo["url"] = None  # a photo the API lists without a URL
        elif "url" not in photo:
            photo["url"] = f"{base}photos/{photo['id']}/square.jpg"
        photo.setdefault("attribution", f"(c) Observadora {oid}, some rights reserved")
        photo.setdefault("original_dimensions", {"width": 2048, "height": 1536})
    return {
        "id": oid,
        "uri": f"https://www.inaturalist.org/observations/{oid}",
        "quality_grade": "research",
        "observed_on": "2023-05-04",
        "time_observed_at": "2023-05-04T06:12:00-05:00",
        "created_at": "2023-05-05T10:00:00-05:00",
        "place_guess": "Puerto Gaitán, Meta, Colombia",
        "location": "4.3139,-72.0826",
        "geojson": {"type": "Point", "coordinates": [-72.0826, 4.3139]},
        "taxon": {"id": 41970, "name": taxon, "rank": "species", "preferred_common_name": taxon},
        "user": {"id": oid, "login": f"obs{oid}", "name": f"Observadora {oid}"},
        "photos": photos,
        "observation_photos": [{"id": p["id"], "position": i, "photo": p} for i, p in enumerate(photos)],
    }


class FakeInat:
    def __init__(self, photo_file: Path) -> None:
        self.photo_bytes = photo_file.read_bytes()
        self.observations: list[dict[str, Any]] = []
        self.api_script: list[str] = []  # per /observations request: "429", "429-no-header", "drop"
        self.photo_script: dict[int, str] = {}  # photo id -> "drop" (once)
        self.api_requests: list[tuple[float, dict[str, list[str]], str]] = []
        self.photo_requests: list[int] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/v1/observations":
                    fake._observations(self, parse_qs(parts.query))
                elif parts.path.startswith("/photos/"):
                    fake._photo(self, int(parts.path.split("/")[2]))
                else:
                    self.send_error(404)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.api_url = self.base + "v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, oid: int, taxon: str, photos: list[dict[str, Any]]) -> None:
        self.observations.append(observation(oid, taxon, photos, self.base))

    def _observations(self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        action = self.api_script.pop(0) if self.api_script else "ok"
        self.api_requests.append((time.monotonic(), query, action))
        if action == "drop":
            handler.connection.shutdown(2)
            return
        if action.startswith("429"):
            handler.send_response(429)
            if action == "429":
                handler.send_header("Retry-After", "1")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        taxon = query.get("taxon_name", [""])[0]
        above = int(query.get("id_above", ["0"])[0])
        per_page = int(query.get("per_page", ["30"])[0])
        matching = sorted(
            (o for o in self.observations if o["taxon"]["name"] == taxon and o["id"] > above),
            key=lambda o: o["id"],
        )
        body = json.dumps(
            {"total_results": len(matching), "page": 1, "per_page": per_page, "results": matching[:per_page]}
        ).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _photo(self, handler: BaseHTTPRequestHandler, photo_id: int) -> None:
        self.photo_requests.append(photo_id)
        body = self.photo_bytes + str(photo_id).encode()  # bytes after the JPEG's end: a distinct file
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if self.photo_script.pop(photo_id, None) == "drop":
            handler.wfile.write(body[:1000])
            handler.wfile.flush()
            handler.connection.shutdown(2)
            return
        handler.wfile.write(body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
