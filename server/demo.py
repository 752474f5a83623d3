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
from .local_broker import Broker
from .simulator import FieldCamera, load_jpegs

if TYPE_CHECKING:
    from .station import Station


def demo_config(broker: Broker, workdir: Path, http_port: int, token: str) -> StationConfig:
    data: dict[str, Any] = {
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": "yaguar-demo-station"},
        "storage": {
            "database_url": f"sqlite:///{workdir / 'station.db'}",
            "media_root": str(workdir / "media"),
        },
        "http": {"port": http_port, "api_tokens": [token], "public_url": f"http://127.0.0.1:{http_port}"},
        "pipeline": {"enabled": True},
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
        station = Station(demo_config(broker, workdir, args.port, token)).start()
        password = _demo_admin(station)
        address = f"{broker.host}:{broker.port}"
        agents = [
            FieldCamera(f"demo-cam-{i + 1:02d}", address, jpegs, workdir / "spools" / str(i)).start()
            for i in range(args.agents)
        ]
        print(f"Yaguar demo: {len(agents)} simulated cameras replaying {len(jpegs)} images from {folder}")
        print(f"  dashboard: {station.http_url}/   (log in as admin, password {password})")
        print(f"  API:       curl -H 'Authorization: Bearer {token}' {station.http_url}/api/v1/media")
        print(f"  data:      {workdir}    (Ctrl+C stops the demo)", flush=True)
        try:
            rounds = 0
            while not stop.is_set() and (args.rounds == 0 or rounds < args.rounds):
                for agent in agents:
                    agent.burst()
                rounds += 1
                stop.wait(args.interval)
            drained = all(agent.wait_drained(30) for agent in agents)
            captured = sum(agent.captured for agent in agents)
            print(
                f"Cameras captured {captured} frames; "
                + ("the station has them all." if drained else "some are still waiting in their spools.")
            )
            stop.wait(args.linger)  # a bounded demo keeps the dashboard up a while, or until Ctrl+C
        finally:
            for agent in agents:
                agent.stop()
            station.stop()
    return 0


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
    parser.add_argument("--workdir", default="var/demo", help="where the demo keeps its database and media")
    parser.set_defaults(func=cmd_demo)
