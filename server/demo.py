"""``yaguar-station demo``: the whole system on one machine, for a first look.

Starts a private Mosquitto on a free port, a station with its database and media under a work folder,
and a field of simulated cameras that replay real camera-trap images (the shared data, or a folder you
name) as PIR bursts. Prints the dashboard address and keeps running until Ctrl+C.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yaguar.paths import shared_data_dir

from .config import StationConfig, config_from_dict
from .demo_field import Heartbeats, alerts_section, place_cameras
from .local_broker import Broker
from .simulator import FieldCamera, load_jpegs

if TYPE_CHECKING:
    from .station import Station


def demo_config(
    broker: Broker, workdir: Path, http_port: int, token: str, offline_after_s: float = 60.0
) -> StationConfig:
    data: dict[str, Any] = {
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": "yaguar-demo-station"},
        "storage": {
            "database_url": f"sqlite:///{workdir / 'station.db'}",
            "media_root": str(workdir / "media"),
        },
        "http": {"port": http_port, "api_tokens": [token], "public_url": f"http://127.0.0.1:{http_port}"},
        "pipeline": {"enabled": True},
        "alerts": alerts_section(offline_after_s),
    }
    return config_from_dict(data, env={})


def cmd_demo(args: argparse.Namespace, _config: StationConfig) -> int:
    from .station import Station

    folder = Path(args.folder) if args.folder else (shared_data_dir() or Path(".")) / "images"
    jpegs = load_jpegs(folder)
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    token = os.environ.get("YAGUAR_DEMO_TOKEN") or secrets.token_urlsafe(16)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    with Broker(workdir / "broker") as broker:
        station = Station(demo_config(broker, workdir, args.port, token, args.offline_after)).start()
        password = _demo_admin(station)
        address = f"{broker.host}:{broker.port}"
        names = [f"demo-cam-{i + 1:02d}" for i in range(args.agents)]
        place_cameras(station, names)
        agents = [
            FieldCamera(name, address, jpegs, workdir / "spools" / str(i)).start()
            for i, name in enumerate(names)
        ]
        beats = Heartbeats(agents, interval_s=min(10.0, args.offline_after / 3)).start()
        print(f"Yaguar demo: {len(agents)} simulated cameras replaying {len(jpegs)} images from {folder}")
        print(f"  dashboard: {station.http_url}/   (log in as admin, password {password})")
        print(f"  API:       curl -H 'Authorization: Bearer {token}' {station.http_url}/api/v1/media")
        print(f"  data:      {workdir}    (Ctrl+C stops the demo)")
        print("  alerts:    big cats and people, SMS off: they appear in this log and on the Alerts page")
        print(f"  map:       {station.http_url}/map   analysis: {station.http_url}/analysis", flush=True)
        try:
            rounds = 0
            while not stop.is_set() and (args.rounds == 0 or rounds < args.rounds):
                for agent in agents:
                    if agent in beats.cameras:
                        agent.burst()
                rounds += 1
                if rounds == args.stop_camera_after and len(agents) > 1:
                    _silence(agents[-1], beats, args.offline_after)
                stop.wait(args.interval)
            drained = all(agent.wait_drained(30) for agent in beats.cameras)
            captured = sum(agent.captured for agent in agents)
            print(
                f"Cameras captured {captured} frames; "
                + ("the station has them all." if drained else "some are still waiting in their spools.")
            )
            stop.wait(args.linger)  # a bounded demo keeps the dashboard up a while, or until Ctrl+C
        finally:
            beats.stop()
            for agent in agents:
                agent.stop()
            station.stop()
    return 0


def _silence(camera: FieldCamera, beats: Heartbeats, offline_after_s: float) -> None:
    """Stop one camera, as a stolen or drowned one stops: a device alert follows."""
    camera.wait_drained(30)  # its last frames reach the station first
    beats.forget(camera)
    camera.stop()
    print(
        f"Stopped {camera.device_id}: in about {offline_after_s:.0f} s the station alerts that it is offline "
        "(this log and the Alerts page)",
        flush=True,
    )


def _demo_admin(station: Station) -> str:
    """An admin account for the demo's dashboard; its password is printed, and kept across runs."""
    from .dashboard.users import UserError, create_user

    password_file = Path(station.config.storage.media_root).parent / "admin-password.txt"
    if password_file.exists():
        return password_file.read_text().strip()
    password = os.environ.get("YAGUAR_DEMO_PASSWORD") or secrets.token_urlsafe(9)
    try:
        with station.session_factory.begin() as session:
            create_user(session, "admin", password, "admin", language="es")
    except UserError:
        return "(unchanged: the admin user already existed)"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return password


def add_commands(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="run a station with simulated cameras on this machine")
    parser.add_argument("--folder", help="folder of JPEGs to replay (default: the shared camera-trap images)")
    parser.add_argument("--agents", type=int, default=4, help="simulated cameras")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between rounds of bursts")
    parser.add_argument("--rounds", type=int, default=0, help="rounds of bursts (0: until Ctrl+C)")
    parser.add_argument(
        "--linger", type=float, default=0.0, help="seconds to keep running after the last round"
    )
    parser.add_argument("--port", type=int, default=8080, help="port of the dashboard and API")
    parser.add_argument(
        "--stop-camera-after", type=int, default=3, help="rounds after which the last camera stops (0: never)"
    )
    parser.add_argument(
        "--offline-after", type=float, default=60.0, help="seconds of silence before a camera is offline"
    )
    parser.add_argument("--workdir", default="var/demo", help="where the demo keeps its database and media")
    parser.set_defaults(func=cmd_demo)
