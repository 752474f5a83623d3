"""Field sites bridged to headquarters. A field station's Mosquitto forwards its cameras' messages to the
headquarters broker over one bridge per site (MQTT v5, so frames keep their metadata; QoS 1; a persistent
session at both ends; TLS), and brings back the Acks, configs and commands for them. Each site logs in as
its own broker user ``site-<name>``, which the headquarters ACL allows to write camera messages and read
what goes back to cameras, and nothing else.

``yaguar-station sites add NAME`` (at headquarters) creates the site's user and prints the bridge
section for the field broker.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from .devices import (
    DOWN,
    SITE_PREFIX,
    UP,
    DevicesConfig,
    hash_password,
    read_password_file,
    reload_broker,
    write_acl,
    write_password_file,
)

SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


def site_user(name: str) -> str:
    if not SITE_NAME.match(name):
        raise ValueError(f"site name {name[:50]!r} must be 1-41 characters of a-z, 0-9 and '-'")
    return SITE_PREFIX + name


def bridge_config(name: str, password: str, hq_host: str, hq_port: int, ca_file: str) -> str:
    """The field broker's bridge section (a file in /etc/mosquitto/conf.d/)."""
    user = site_user(name)
    topics = [f"topic yaguar/v1/+/{kind} out 1" for kind in UP] + [
        f"topic yaguar/v1/+/{kind} in 1" for kind in DOWN
    ]
    return "\n".join(
        [
            f"# Bridge of field site {name} to headquarters, from `yaguar-station sites add {name}`.",
            "# Keep it readable by mosquitto only: it holds the site's password.",
            f"connection yaguar-hq-{name}",
            f"address {hq_host}:{hq_port}",
            "bridge_protocol_version mqttv50",  # frames carry their metadata in v5 user properties
            f"remote_clientid yaguar-bridge-{name}",
            f"remote_username {user}",
            f"remote_password {password}",
            f"bridge_cafile {ca_file}",
            "bridge_insecure false",
            # Queues survive at both ends: the field broker keeps what the link could not carry (persistence
            # must be on there), headquarters keeps what is on its way back; QoS 1 both ways.
            "cleansession false",
            "local_cleansession false",
            "try_private false",
            "notifications false",
            "start_type automatic",
            "restart_timeout 2 30",
            "keepalive_interval 30",
            *topics,
            "",
        ]
    )


@dataclass(frozen=True)
class NewSite:
    user: str
    password: str
    bridge: str
    reload: str


def add_site(config: DevicesConfig, name: str, hq_host: str, hq_port: int, ca_file: str) -> NewSite:
    """Create (or replace) the site's broker user, allow it in the ACL, and make its bridge section."""
    user = site_user(name)
    password = secrets.token_urlsafe(32)
    entries = read_password_file(config.password_file)
    entries[user] = hash_password(password, config.hash_iterations)
    write_password_file(config.password_file, entries)
    write_acl(config)
    return NewSite(
        user, password, bridge_config(name, password, hq_host, hq_port, ca_file), reload_broker(config)
    )
