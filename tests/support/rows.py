"""Rows that tests put straight into the station's database, as ingest would have written them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from yaguar.storage.models import Media


def media_row(device_id: str, seq: int, captured_at: datetime, path: str, **columns: Any) -> Media:
    """A stored frame: by default the only frame of a PIR burst, with a zeroed hash and no size;
    ``columns`` set any column (``process_state``, ``event_id``, ``width``...)."""
    defaults: dict[str, Any] = {
        "capture_id": f"c{seq}",
        "agent_event_id": f"b{seq}",
        "burst_index": 0,
        "burst_size": 1,
        "trigger": "pir",
        "utc_offset_min": -300,
        "sha256": "0" * 64,
        "size": 1,
        "width": 0,
        "height": 0,
    }
    return Media(device_id=device_id, seq=seq, captured_at=captured_at, path=path, **{**defaults, **columns})
