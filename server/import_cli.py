"""``yaguar-station import FOLDER --camera ID``: an SD card's pictures into the station."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from prometheus_client import CollectorRegistry

from yaguar.engine.sdcard import parse_zone
from yaguar.protocol.topics import check_device_id

from .config import StationConfig
from .ingest.media_store import MediaStore
from .pipeline.store import EventHook
from .sdcard_import import CardImporter

log = logging.getLogger(__name__)

# Far beyond any card's age: with --alerts, old pictures alert as if they had just arrived.
NO_AGE_LIMIT_S = 100 * 365 * 86_400.0


def add_commands(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("import", help="bring an SD card's pictures into the station as one camera")
    parser.add_argument("folder", type=Path, help="the card (or a copy of it); searched recursively")
    parser.add_argument("--camera", required=True, help="the camera's device id (made if new)")
    parser.add_argument("--timezone", default="UTC", help="the camera's clock, where EXIF has no offset")
    parser.add_argument("--position", default=None, metavar="LAT,LON", help="where the camera stood")
    parser.add_argument("--alerts", action="store_true", help="run the alert rules on these old pictures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=cmd_import)


def _alert_hooks(config: StationConfig) -> list[EventHook]:
    from yaguar.alerts.deliveries import DeliveryPlanner
    from yaguar.alerts.metrics import AlertMetrics
    from yaguar.alerts.outbox import Outbox

    alerts = config.alerts.model_copy(
        update={"flood": config.alerts.flood.model_copy(update={"max_event_age_s": NO_AGE_LIMIT_S})}
    )
    metrics = AlertMetrics(CollectorRegistry())
    # The running station's sender delivers what lands in the outbox.
    return [Outbox(alerts, DeliveryPlanner(alerts, config.http.public_url, metrics), metrics).on_event]


def _position(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lat, lon = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--position {text!r}: write LAT,LON, e.g. 4.61,-74.08") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"--position {text!r} is not on Earth")
    return lat, lon


def cmd_import(args: argparse.Namespace, config: StationConfig) -> int:
    from yaguar.engine.analyser import Analyser
    from yaguar.server.schema import upgrade
    from yaguar.storage import make_db_engine, make_session_factory
    from yaguar.storage.models import Device

    try:
        check_device_id(args.camera)  # the same ids as agents: it may be one, or become one
        zone = parse_zone(args.timezone)
        position = _position(args.position)
        if not args.folder.is_dir():
            raise ValueError(f"{args.folder} is not a folder")
        if args.alerts and not config.alerts.enabled:
            raise ValueError("--alerts needs [alerts] enabled = true in the station config")
    except ValueError as exc:
        print(f"yaguar-station import: {exc}")
        return 2
    engine = make_db_engine(config.storage.database_url, config.storage.sqlite_synchronous)
    upgrade(engine)
    sessions = make_session_factory(engine)
    media = MediaStore(config.storage.media_root)
    importer = CardImporter(
        sessions, media, args.camera, zone, config.pipeline.event_gap_s, progress=not args.no_progress
    )
    problems = importer.store(args.folder)
    result = importer.result
    for problem in problems:
        log.warning("%s", problem)
    if position is not None:
        with sessions.begin() as session:
            device = session.get(Device, args.camera)
            if device is not None:
                device.latitude, device.longitude = position
    if importer.waiting():
        try:
            analyser = Analyser(config.pipeline)
        except Exception as exc:  # a backend's own errors too: the frames are kept for the station
            importer.leave_for_the_station()
            print(f"yaguar-station import: cannot analyse here ({exc}); the station will analyse them")
        else:
            hooks = _alert_hooks(config) if args.alerts else []
            importer.analyse(analyser, media.root, hooks)
    result.events = importer.event_count()
    print(
        f"{args.camera}: {result.found} pictures and {result.videos} video(s) read; {result.stored} new frames, "
        f"{result.already} already imported, {len(problems)} not imported; {result.analysed} analysed; "
        f"{result.events} events"
        + (f"; {result.file_times} with the file's time (no EXIF time)" if result.file_times else "")
    )
    engine.dispose()
    return 0
