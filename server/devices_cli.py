"""``yaguar-station devices add|revoke|list|station-password``: manage who may talk to the broker."""

from __future__ import annotations

import argparse
import getpass

from sqlalchemy.orm import Session, sessionmaker

from .config import StationConfig
from .devices import add_device, list_devices, reload_broker, revoke_device, set_station_password


def _sessions(config: StationConfig) -> sessionmaker[Session]:
    from yaguar.server.schema import upgrade
    from yaguar.storage import make_db_engine, make_session_factory

    engine = make_db_engine(config.storage.database_url)
    upgrade(engine)
    return make_session_factory(engine)


def cmd_add(args: argparse.Namespace, config: StationConfig) -> int:
    try:
        new = add_device(config.devices, _sessions(config), args.name, args.label)
    except ValueError as exc:
        print(f"yaguar-station devices add: {exc}")
        return 2
    print(f"Device {new.device_id} added; {new.reload}.")
    print()
    if new.password is not None:
        print("On the Pi, put this line in /etc/yaguar/agent.env (mode 0600); it is shown only once:")
        print(f"YAGUAR_MQTT_PASSWORD={new.password}")
    else:
        print(f"Copy to the Pi: {new.cert_file} and {new.key_file} (to /etc/yaguar/, key mode 0600)")
    print(f"and the station CA certificate to {config.devices.agent_ca_file}.")
    print()
    print("Agent config to merge into /etc/yaguar/agent.toml:")
    print(new.agent_toml)
    return 0


def cmd_revoke(args: argparse.Namespace, config: StationConfig) -> int:
    try:
        outcome = revoke_device(config.devices, _sessions(config), args.name)
    except (ValueError, LookupError) as exc:
        print(f"yaguar-station devices revoke: {exc}")
        return 2
    print(f"Device {args.name} revoked: it can no longer log in, and its frames are refused; {outcome}.")
    return 0


def cmd_list(args: argparse.Namespace, config: StationConfig) -> int:
    devices = list_devices(_sessions(config))
    if not devices:
        print("No devices yet. Add one with: yaguar-station devices add NAME")
        return 0
    print(f"{'device':24} {'state':10} {'status':8} last seen")
    for device in devices:
        state = "revoked" if device.revoked else ("registered" if device.registered else "unknown")
        seen = device.last_seen.isoformat(timespec="seconds") if device.last_seen else "never"
        print(f"{device.id:24} {state:10} {device.status or '-':8} {seen}")
    return 0


def cmd_station_password(args: argparse.Namespace, config: StationConfig) -> int:
    password = args.password or getpass.getpass("New broker password for the station user: ")
    if len(password) < 12:
        print("yaguar-station devices station-password: use at least 12 characters")
        return 2
    set_station_password(config.devices, password)
    print(f"Station user {config.devices.station_username} set; {reload_broker(config.devices)}.")
    print("Put the same password in /etc/yaguar/station.env as YAGUAR_MQTT_PASSWORD.")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    devices = sub.add_parser("devices", help="add, revoke and list the cameras allowed on the broker")
    actions = devices.add_subparsers(dest="devices_command", required=True)
    add = actions.add_parser("add", help="create a camera's credentials and print its agent config")
    add.add_argument("name", help="device id: a-z, 0-9 and '-', 1 to 63 characters")
    add.add_argument("--label", help="a name for people (e.g. 'Quebrada norte')")
    add.set_defaults(func=cmd_add)
    revoke = actions.add_parser("revoke", help="lock a camera out of the broker and the station")
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_revoke)
    actions.add_parser("list", help="list known cameras").set_defaults(func=cmd_list)
    station = actions.add_parser("station-password", help="set the station's own broker password")
    station.add_argument("--password", help="(default: asked for)")
    station.set_defaults(func=cmd_station_password)
