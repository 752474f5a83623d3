"""``yaguar-station devices add|list|revoke``: the files the broker reads, the registry, the agent
config it prints, and refusals in plain words."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.support.config_files import write_station_config
from yaguar.agent.config import parse_config
from yaguar.server.cli import main
from yaguar.server.devices import check_password, read_password_file
from yaguar.storage import make_db_engine, make_session_factory
from yaguar.storage.models import Device


def write_config(tmp_path: Path, auth: str = "password") -> Path:
    return write_station_config(
        tmp_path,
        devices={
            "auth": auth,
            "password_file": tmp_path / "broker" / "passwd",
            "acl_file": tmp_path / "broker" / "acl",
            "ca_dir": tmp_path / "ca",
            "broker_pid_file": tmp_path / "no-such.pid",
            "agent_broker_host": "estacion.local",
        },
    )


def test_add_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["--config", str(config), "devices", "add", "cam-07", "--label", "Quebrada norte"]) == 0
    out = capsys.readouterr().out
    password = next(
        line.split("=", 1)[1] for line in out.splitlines() if line.startswith("YAGUAR_MQTT_PASSWORD=")
    )
    entries = read_password_file(tmp_path / "broker" / "passwd")
    assert check_password(password, entries["cam-07"]) and "cam-07" in entries
    assert (tmp_path / "broker" / "passwd").stat().st_mode & 0o777 == 0o640
    assert "pattern write yaguar/v1/%u/frame" in (tmp_path / "broker" / "acl").read_text()
    assert "reload the broker yourself" in out  # no pid file: the person is told what to run
    toml = out.split("Agent config to merge into /etc/yaguar/agent.toml:\n", 1)[1]
    agent = tomllib.loads(toml)
    assert agent["device_id"] == "cam-07" and agent["mqtt"]["host"] == "estacion.local"
    parse_config(
        {**agent, "camera": {"type": "replay", "folder": "/tmp"}}, {"YAGUAR_MQTT_PASSWORD": password}
    )

    assert main(["--config", str(config), "devices", "list"]) == 0
    assert "cam-07" in capsys.readouterr().out

    assert main(["--config", str(config), "devices", "revoke", "cam-07"]) == 0
    assert "cam-07" not in read_password_file(tmp_path / "broker" / "passwd")
    with make_session_factory(make_db_engine(f"sqlite:///{tmp_path / 'station.db'}"))() as session:
        device = session.get(Device, "cam-07")
        assert device.registered and device.revoked and device.name == "Quebrada norte"


@pytest.mark.parametrize("name", ["../etc", "Cam-07", "a/b", "cam+", "x" * 64, "station"])
def test_bad_names_are_refused_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    assert main(["--config", str(write_config(tmp_path)), "devices", "add", name]) == 2
    assert "devices add:" in capsys.readouterr().out
    assert (
        not (tmp_path / "broker" / "passwd").exists()
        or name not in (tmp_path / "broker" / "passwd").read_text()
    )


def test_revoking_an_unknown_device_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(write_config(tmp_path)), "devices", "revoke", "cam-99"]) == 2
    assert "no device 'cam-99'" in capsys.readouterr().out


def test_certificate_mode_issues_a_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography import x509

    assert main(["--config", str(write_config(tmp_path, "certificate")), "devices", "add", "cam-08"]) == 0
    cert = x509.load_pem_x509_certificate((tmp_path / "ca" / "cam-08.crt").read_bytes())
    ca = x509.load_pem_x509_certificate((tmp_path / "ca" / "ca.crt").read_bytes())
    assert cert.subject.rfc4514_string() == "CN=cam-08" and cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    assert (tmp_path / "ca" / "cam-08.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "ca" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert 'cert_file = "/etc/yaguar/cam-08.crt"' in capsys.readouterr().out
