"""``yaguar-station sites add|list``: field sites whose brokers bridge to this (headquarters) broker."""

from __future__ import annotations

import argparse

from .config import StationConfig
from .devices import SITE_PREFIX, site_users
from .sites import add_site


def cmd_add(args: argparse.Namespace, config: StationConfig) -> int:
    devices = config.devices
    try:
        new = add_site(
            devices, args.name, args.hq_host, args.hq_port or devices.agent_broker_port, args.ca_file
        )
    except ValueError as exc:
        print(f"yaguar-station sites add: {exc}")
        return 2
    print(f"Site {args.name} added: its bridge logs in here as {new.user}; {new.reload}.")
    print(f"On the field station, copy this CA certificate to {args.ca_file}: {devices.ca_dir / 'ca.crt'}")
    print("and save the following as /etc/mosquitto/conf.d/yaguar-hq.conf (mode 0640, group mosquitto;")
    print("it holds the site's password, shown only once), then: sudo systemctl restart mosquitto")
    print()
    print(new.bridge)
    return 0


def cmd_list(args: argparse.Namespace, config: StationConfig) -> int:
    users = site_users(config.devices)
    if not users:
        print("No field sites yet. Add one with: yaguar-station sites add NAME --hq-host HOST")
    for user in users:
        print(user.removeprefix(SITE_PREFIX))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    sites = subparsers.add_parser("sites", help="field sites bridged to this headquarters broker")
    sub = sites.add_subparsers(dest="sites_command", required=True)
    add = sub.add_parser("add", help="a site's bridge user, and the bridge section for its broker")
    add.add_argument("name", help="the site's name: a-z, 0-9 and '-'")
    add.add_argument("--hq-host", required=True, help="this broker's address as the field sites reach it")
    add.add_argument("--hq-port", type=int, help="its TLS port (default: [devices] agent_broker_port)")
    add.add_argument(
        "--ca-file", default="/etc/mosquitto/yaguar/hq-ca.crt", help="where the field broker keeps our CA"
    )
    add.set_defaults(func=cmd_add)
    sub.add_parser("list", help="the sites allowed to bridge here").set_defaults(func=cmd_list)
