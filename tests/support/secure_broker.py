"""The production broker config (systemd/mosquitto/yaguar.conf), run as it ships with only its paths and
ports moved into a temp dir, plus the station CA, the station user and devices made by the same code as
``yaguar-station devices``."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from tests.support.broker import Broker, free_port
from yaguar.server.device_ca import StationCA
from yaguar.server.devices import DevicesConfig, add_device, set_station_password
from yaguar.server.schema import upgrade
from yaguar.storage import make_db_engine, make_session_factory

PRODUCTION_CONF = Path(__file__).resolve().parents[2] / "systemd" / "mosquitto" / "yaguar.conf"


class ProductionBroker(Broker):
    """``Broker`` whose config is the shipped production file, relocated."""

    def __init__(self, workdir: Path, ca_dir: Path, devices: DevicesConfig, **overrides: str) -> None:
        super().__init__(workdir)
        self.tls_port = free_port()
        self.ca_dir = ca_dir
        self.devices = devices
        self.overrides = overrides  # option -> new value, e.g. autosave_interval="1"

    def write_config(self) -> None:
        text = PRODUCTION_CONF.read_text()
        replacements = {
            "/etc/mosquitto/yaguar/passwd": str(self.devices.password_file),
            "/etc/mosquitto/yaguar/acl": str(self.devices.acl_file),
            "/etc/yaguar/ca/": f"{self.ca_dir}/",
            "listener 8883\n": f"listener {self.tls_port} 127.0.0.1\n",
            "listener 1883 127.0.0.1\n": f"listener {self.port} 127.0.0.1\n",
            "persistence_location /var/lib/mosquitto/": f"persistence_location {self.workdir}/",
            "log_dest syslog": f"log_dest file {self.log_path}",
        }
        if self.devices.auth == "certificate":  # the commented-out client-certificate lines, switched on
            for option in ("require_certificate true", "use_identity_as_username true", "crlfile "):
                replacements[f"#   {option}"] = option
        for old, new in replacements.items():
            assert old in text, f"the production config no longer has {old!r}"
            text = text.replace(old, new)
        lines = []
        for line in text.splitlines():
            option = line.split(" ", 1)[0]
            lines.append(f"{option} {self.overrides[option]}" if option in self.overrides else line)
        if os.geteuid() == 0:  # as root Mosquitto becomes user "mosquitto", who cannot enter pytest's tmp
            lines.append("user root")
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self) -> ProductionBroker:
        super().start()
        assert self.proc is not None and self.devices.broker_pid_file is not None
        self.devices.broker_pid_file.write_text(f"{self.proc.pid}\n")
        return self


@dataclass
class SecureSetup:
    devices: DevicesConfig
    ca: StationCA
    session_factory: sessionmaker[Session]
    db_url: str
    station_password: str
    passwords: dict[str, str] = field(default_factory=dict)

    def add(self, device_id: str) -> str:
        new = add_device(self.devices, self.session_factory, device_id)
        assert new.password is not None
        self.passwords[device_id] = new.password
        return new.password


def secure_setup(workdir: Path, device_ids: list[str], auth: str = "password") -> SecureSetup:
    workdir.mkdir(parents=True, exist_ok=True)
    devices = DevicesConfig(
        auth=auth,  # type: ignore[arg-type]
        password_file=workdir / "mosquitto" / "passwd",
        acl_file=workdir / "mosquitto" / "acl",
        ca_dir=workdir / "ca",
        broker_pid_file=workdir / "mosquitto.pid",
        agent_broker_host="127.0.0.1",
    )
    ca = StationCA(devices.ca_dir).ensure()
    ca.issue("broker", server_names=["127.0.0.1", "localhost"])
    db_url = f"sqlite:///{workdir / 'station.db'}"
    engine = make_db_engine(db_url)
    upgrade(engine)
    station_password = secrets.token_urlsafe(24)
    set_station_password(devices, station_password)
    setup = SecureSetup(devices, ca, make_session_factory(engine), db_url, station_password)
    if auth == "password":
        for device_id in device_ids:
            setup.add(device_id)
    return setup
