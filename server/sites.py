"""Field sites bridged to headquarters. A field station's Mosquitto forwards its cameras' messages to the
headquarters broker over one bridge per site (MQTT v5, so frames keep their metadata; QoS 1; a persistent
session at both ends; TLS), and brings back the Acks, configs and commands for them. Each site logs in as
its own broker user ``site-<name>``, which the headquarters ACL allows to write camera messages and read
what goes back to cameras, and nothing else.

How a site proves who it is follows ``[devices] auth`` at headquarters: a password over TLS, or a client
certificate from the station CA whose common name is ``site-<name>`` (the headquarters listener has
``require_certificate true`` and ``use_identity_as_username true``, so the certificate is the user).

``yaguar-station sites add NAME`` (at headquarters) creates the site's user (or certificate) and prints
the bridge section for the field broker.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from .device_ca import StationCA
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
FIELD_CERT_FILE = "/etc/mosquitto/yaguar/hq-site.crt"  # where the field broker keeps its certificate
FIELD_KEY_FILE = "/etc/mosquitto/yaguar/hq-site.key"


def site_user(name: str) -> str:
    if not SITE_NAME.match(name):
        raise ValueError(f"site name {name[:50]!r} must be 1-41 characters of a-z, 0-9 and '-'")
    return SITE_PREFIX + name


@dataclass(frozen=True)
class FieldFiles:
    """Where the field broker keeps the files the bridge names."""

    ca_file: str
    cert_file: str = FIELD_CERT_FILE
    key_file: str = FIELD_KEY_FILE


def bridge_config(name: str, hq_host: str, hq_port: int, files: FieldFiles, password: str | None) -> str:
    """The field broker's bridge section (a file in /etc/mosquitto/conf.d/). With a password the site
    logs in as its user; without one it shows its client certificate, whose name is the user."""
    user = site_user(name)
    topics = [f"topic yaguar/v1/+/{kind} out 1" for kind in UP] + [
        f"topic yaguar/v1/+/{kind} in 1" for kind in DOWN
    ]
    if password is not None:
        identity = [
            "# Keep it readable by mosquitto only: it holds the site's password.",
            f"remote_username {user}",
            f"remote_password {password}",
        ]
    else:
        identity = [
            f"# The site's certificate ({user}) is its identity: keep the key readable by mosquitto only.",
            f"bridge_certfile {files.cert_file}",
            f"bridge_keyfile {files.key_file}",
        ]
    return "\n".join(
        [
            f"# Bridge of field site {name} to headquarters, from `yaguar-station sites add {name}`.",
            f"connection yaguar-hq-{name}",
            f"address {hq_host}:{hq_port}",
            "bridge_protocol_version mqttv50",  # frames carry their metadata in v5 user properties
            f"remote_clientid yaguar-bridge-{name}",
            *identity,
            f"bridge_cafile {files.ca_file}",
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
    password: str | None  # None: the site has a certificate instead
    cert_file: Path | None  # the issued certificate and key, to copy to the field station
    key_file: Path | None
    bridge: str
    reload: str


def add_site(config: DevicesConfig, name: str, hq_host: str, hq_port: int, files: FieldFiles) -> NewSite:
    """Create (or replace) the site's broker user or certificate, allow it in the ACL, and make its
    bridge section."""
    user = site_user(name)
    entries = read_password_file(config.password_file)
    password = cert_file = key_file = None
    if config.auth == "password":
        password = secrets.token_urlsafe(32)
        entries[user] = hash_password(password, config.hash_iterations)
    else:
        pair = StationCA(config.ca_dir).ensure().issue(user)
        cert_file, key_file = pair.cert_file, pair.key_file
        entries.pop(user, None)  # a password from before is no way in any more
    write_password_file(config.password_file, entries)
    write_acl(config)
    bridge = bridge_config(name, hq_host, hq_port, files, password)
    return NewSite(user, password, cert_file, key_file, bridge, reload_broker(config))


def remove_site(config: DevicesConfig, name: str) -> str:
    """Shut a site out: its password gone, its certificate revoked (the broker reads the revocation list),
    its user out of the ACL. Returns what happened to the broker's reload; LookupError for an unknown site."""
    user = site_user(name)
    entries = read_password_file(config.password_file)
    had_password = entries.pop(user, None) is not None
    if had_password:
        write_password_file(config.password_file, entries)
    had_cert = (config.ca_dir / "ca.crt").exists() and StationCA(config.ca_dir).revoke(user)
    if not (had_password or had_cert):
        raise LookupError(f"no site {name!r} is known to this broker")
    write_acl(config)
    return reload_broker(config)
