"""The frame limits of the wire contract (SPEC.md): the station refuses a frame over them, and the agent
never sends one. Both configs take their defaults from here."""

from __future__ import annotations

MAX_FRAME_BYTES = 8 * 1024 * 1024  # one JPEG payload
MAX_FRAME_PIXELS = 50_000_000  # 50 MP: above every camera-trap sensor, far below a decompression bomb
