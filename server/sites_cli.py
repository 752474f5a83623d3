"""``yaguar-station sites add|list``: field sites whose brokers bridge to this (headquarters) broker."""

from __future__ import annotations

import argparse

from .config import StationConfig
from .devices import SITE_PREFIX, site_users
from .sites import FIELD_CERT_FILE, FIELD_KEY_FILE, FieldFiles, add_site, remove_site


def cmd_add(args: argparse.Namespace, config: StationConfig) -> int:
    devices = config.devices
    files = FieldFiles(args.ca_file, args.cert_file, args.key_file)
    try:
        new = add_site(devices, args.name, args.hq_host, args.hq_port or devices.agent_broker_port, files)
    except ValueError as exc:
        print(f"yaguar-station sites add: {exc}")
        return 2
    how = "its password" if new.password else "its certificate"
    print(f"Site {args.name} added: its bridge logs in here as {new.user} with {how}; {new.reload}.")
    print("On the field station, copy these files (owner root, group mosquitto, mode 0640):")
    print(f"  {devices.ca_dir / 'ca.crt'} -> {args.ca_file}")
    if new.cert_file is not None and new.key_file is not None:
        print(f"  {new.cert_file} -> {args.cert_file}")
        print(f"  {new.key_file} -> {args.key_file}   (the site's secret: delete it here once copied)")
    secret = "it holds the site's password, shown only once" if new.password else "no secret in it"
    print("and save the following as /etc/mosquitto/conf.d/yaguar-hq.conf (mode 0640, group mosquitto;")
    print(f"{secret}), then: sudo systemctl restart mosquitto")
    print()
    print(new.bridge)
    return 0


def cmd_remove(args: argparse.Namespace, config: StationConfig) -> int:
    try:
        reload = remove_site(config.devices, args.name)
    except (ValueError, LookupError) as exc:
        print(f"yaguar-station sites remove: {exc}")
        return 2
    print(f"Site {args.name} removed: its bridge can no longer log in here; {reload}.")
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
    add.add_argument(
        "--cert-file", default=FIELD_CERT_FILE, help="where it keeps the site's certificate ([devices] auth)"
    )
    add.add_argument("--key-file", default=FIELD_KEY_FILE, help="and the certificate's key")
    add.set_defaults(func=cmd_add)
    sub.add_parser("list", help="the sites allowed to bridge here").set_defaults(func=cmd_list)
    remove = sub.add_parser("remove", help="shut a site out: password gone, certificate revoked")
    remove.add_argument("name")
    remove.set_defaults(func=cmd_remove)
