"""Device identities on the broker: one MQTT user per camera, an ACL that confines it to its own topics,
and the station's device registry (``[devices]`` in station.toml).

``add_device`` creates a password (stored as a Mosquitto ``$7$`` PBKDF2-SHA512 hash) or a client
certificate signed by the station's CA, writes the broker's files, marks the device registered, and
returns the agent config to copy to the Pi. ``revoke_device`` removes the broker entry (and revokes the
certificate), marks the device revoked (ingest refuses its frames with ``revoked_device``) and asks the
broker to reload (SIGHUP to the pid in ``broker_pid_file``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field
from sqlalchemy.orm import Session, sessionmaker

from yaguar.config import Section
from yaguar.protocol.topics import check_device_id
from yaguar.storage.models import Device

from .device_ca import StationCA, broker_readable, write_private

log = logging.getLogger(__name__)

HASH_TYPE_SHA512_PBKDF2 = 7  # Mosquitto 2.0's "$7$" password entries
SALT_BYTES = 12  # what mosquitto_passwd uses


class DevicesConfig(Section):
    """Where the broker's identity files live and how new devices log in."""

    auth: Literal["password", "certificate"] = Field(
        default="password", description="how devices log in: a password over TLS, or a client certificate"
    )
    password_file: Path = Field(
        default=Path("/etc/mosquitto/yaguar/passwd"), description="Mosquitto password_file"
    )
    acl_file: Path = Field(default=Path("/etc/mosquitto/yaguar/acl"), description="Mosquitto acl_file")
    ca_dir: Path = Field(default=Path("/etc/yaguar/ca"), description="the station CA and issued certificates")
    broker_pid_file: Path | None = Field(
        default=Path("/run/mosquitto/mosquitto.pid"),
        description="the broker's pid file: SIGHUP makes it reread password, ACL and CRL files; None: print",
    )
    station_username: str = Field(
        default="station", pattern=r"^[A-Za-z0-9_-]{1,63}$", description="the station's MQTT user"
    )
    agent_broker_host: str = Field(
        default="station.local", min_length=1, max_length=253, description="broker address the Pis use"
    )
    agent_broker_port: int = Field(default=8883, ge=1, le=65535)
    agent_ca_file: Path = Field(
        default=Path("/etc/yaguar/ca.crt"), description="where the Pi keeps the station CA certificate"
    )
    hash_iterations: int = Field(
        default=101,
        ge=101,
        le=1_000_000,
        description="PBKDF2 rounds; passwords are 32 random bytes, so more rounds add no safety, only CPU",
    )


def hash_password(password: str, iterations: int = 101, salt: bytes | None = None) -> str:
    """A Mosquitto 2.0 password-file hash: ``$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>``."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"${HASH_TYPE_SHA512_PBKDF2}${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, entry: str) -> bool:
    _, kind, iterations, salt, digest = entry.split("$")
    if int(kind) != HASH_TYPE_SHA512_PBKDF2:
        return False
    expected = hash_password(password, int(iterations), base64.b64decode(salt))
    return secrets.compare_digest(expected.rsplit("$", 1)[1], digest)


def read_password_file(path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    if not path.exists():
        return entries
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#") and ":" in line:
            user, entry = line.split(":", 1)
            entries[user] = entry
    return entries


def write_password_file(path: Path, entries: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{user}:{entry}\n" for user, entry in sorted(entries.items()))
    write_private(path, text.encode())
    broker_readable(path)


def render_acl(station_username: str) -> str:
    """The broker's ACL. ``pattern`` lines apply to every user with ``%u`` = its user name (the device
    id, or the certificate's common name): a device writes only under its own prefix and reads only its
    own ack/config/command. The station user reads and writes all of ``yaguar/v1`` and reads ``$SYS``."""
    return (
        "# Written by `yaguar-station devices`; edits are overwritten.\n"
        f"user {station_username}\n"
        "topic readwrite yaguar/v1/#\n"
        "topic read $SYS/#\n"
        "\n"
        "# every device (the user name is the device id)\n"
        "pattern write yaguar/v1/%u/frame\n"
        "pattern write yaguar/v1/%u/heartbeat\n"
        "pattern write yaguar/v1/%u/status\n"
        "pattern write yaguar/v1/%u/clip\n"  # video clips in chunks (SPEC.md, "Clip chunks")
        "pattern read yaguar/v1/%u/ack\n"
        "pattern read yaguar/v1/%u/config\n"
        "pattern read yaguar/v1/%u/command\n"
    )


# Field sites' bridges (sites.py) log in as broker users named site-<name>.
SITE_PREFIX = "site-"
UP = ("frame", "heartbeat", "status", "clip")  # camera -> station: out over a bridge
DOWN = ("ack", "config", "command")  # station -> camera: in over a bridge


def site_users(config: DevicesConfig) -> list[str]:
    """The sites' bridge users: with a password, or with a client certificate that is not revoked."""
    with_password = {u for u in read_password_file(config.password_file) if u.startswith(SITE_PREFIX)}
    with_certificate = {n for n in StationCA(config.ca_dir).issued() if n.startswith(SITE_PREFIX)}
    return sorted(with_password | with_certificate)


def render_site_acl(users: list[str]) -> str:
    """ACL blocks for the sites' bridges: any camera's messages, as a bridge carries a whole site."""
    blocks = []
    for user in users:
        lines = [f"user {user}"]
        lines += [f"topic write yaguar/v1/+/{kind}" for kind in UP]
        lines += [f"topic read yaguar/v1/+/{kind}" for kind in DOWN]
        blocks.append("\n".join(lines) + "\n")
    return "\n# field sites' bridges\n" + "\n".join(blocks) if blocks else ""


def write_acl(config: DevicesConfig) -> None:
    config.acl_file.parent.mkdir(parents=True, exist_ok=True)
    text = render_acl(config.station_username) + render_site_acl(site_users(config))
    write_private(config.acl_file, text.encode())
    broker_readable(config.acl_file)


def set_station_password(config: DevicesConfig, password: str) -> None:
    """The station's own broker user (its password goes to YAGUAR_MQTT_PASSWORD)."""
    entries = read_password_file(config.password_file)
    entries[config.station_username] = hash_password(password, config.hash_iterations)
    write_password_file(config.password_file, entries)
    write_acl(config)


def reload_broker(config: DevicesConfig) -> str:
    """SIGHUP the broker so it rereads its password, ACL and CRL files; returns what was done, in words."""
    manual = "reload the broker yourself: sudo systemctl reload mosquitto"
    if config.broker_pid_file is None:
        return manual
    try:
        pid = int(config.broker_pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        log.warning("could not signal the broker through %s: %s", config.broker_pid_file, exc)
        return f"could not signal the broker ({exc}); {manual}"
    return f"broker (pid {pid}) told to reload"


@dataclass(frozen=True)
class NewDevice:
    device_id: str
    password: str | None
    cert_file: Path | None
    key_file: Path | None
    agent_toml: str
    reload: str


def agent_toml(config: DevicesConfig, device_id: str, with_certificate: bool) -> str:
    lines = [
        "# /etc/yaguar/agent.toml (the rest of the agent's settings: systemd/agent.example.toml)",
        f'device_id = "{device_id}"',
        "",
        "[mqtt]",
        f'host = "{config.agent_broker_host}"',
        f"port = {config.agent_broker_port}",
        "",
        "[mqtt.tls]",
        f'ca_file = "{config.agent_ca_file}"',
    ]
    if with_certificate:
        lines += [f'cert_file = "/etc/yaguar/{device_id}.crt"', f'key_file = "/etc/yaguar/{device_id}.key"']
    return "\n".join(lines) + "\n"


def add_device(
    config: DevicesConfig, session_factory: sessionmaker[Session], device_id: str, name: str | None = None
) -> NewDevice:
    """Create (or replace) the device's credentials and register it."""
    device_id = check_device_id(device_id)
    if device_id == config.station_username:
        raise ValueError(f"{device_id!r} is the station's own user name")
    write_acl(config)
    password = cert_file = key_file = None
    if config.auth == "password":
        password = secrets.token_urlsafe(32)
        entries = read_password_file(config.password_file)
        entries[device_id] = hash_password(password, config.hash_iterations)
        write_password_file(config.password_file, entries)
    else:
        pair = StationCA(config.ca_dir).ensure().issue(device_id)
        cert_file, key_file = pair.cert_file, pair.key_file
    with session_factory.begin() as session:
        device = session.get(Device, device_id)
        if device is None:
            device = Device(id=device_id, first_seen=datetime.now(UTC))
            session.add(device)
        device.registered, device.revoked = True, False
        if name:
            device.name = name
    log.info("device %s added (%s)", device_id, config.auth)
    return NewDevice(
        device_id,
        password,
        cert_file,
        key_file,
        agent_toml(config, device_id, config.auth == "certificate"),
        reload_broker(config),
    )


def revoke_device(config: DevicesConfig, session_factory: sessionmaker[Session], device_id: str) -> str:
    """Lock a device out: no broker login, its certificate revoked, its frames refused by ingest."""
    device_id = check_device_id(device_id)
    entries = read_password_file(config.password_file)
    had_password = entries.pop(device_id, None) is not None
    if had_password:
        write_password_file(config.password_file, entries)
    had_cert = StationCA(config.ca_dir).revoke(device_id) if (config.ca_dir / "ca.crt").exists() else False
    with session_factory.begin() as session:
        device = session.get(Device, device_id)
        if device is None and not (had_password or had_cert):
            raise LookupError(f"no device {device_id!r} is known to this station")
        if device is None:
            device = Device(id=device_id, first_seen=datetime.now(UTC))
            session.add(device)
        device.revoked = True
    log.info("device %s revoked", device_id)
    return reload_broker(config)


def list_devices(session_factory: sessionmaker[Session]) -> list[Device]:
    with session_factory() as session:
        return list(session.query(Device).order_by(Device.id).all())
