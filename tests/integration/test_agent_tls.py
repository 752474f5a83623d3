"""The agent over TLS, as in production: a client certificate whose common name is the device id, or a
user name and password (from the environment). Certificates are made for the test with `cryptography`;
Mosquitto checks them, and its ACL pins each device to its own topics."""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.agent_support import StationDouble, wait_until
from tests.support.broker import Broker, free_port
from yaguar.agent.config import MqttConfig, TlsConfig, parse_config
from yaguar.agent.publisher import Publisher
from yaguar.agent.spool import Spool

ACL = "pattern readwrite yaguar/v1/%u/#\nuser station\ntopic readwrite yaguar/v1/#\n"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> tuple[Path, Path]:
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path.with_suffix(".crt"), path.with_suffix(".key")


def make_pki(directory: Path, clients: list[str]) -> dict[str, tuple[Path, Path]]:
    """A CA, a server certificate for 127.0.0.1, and one client certificate per common name."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("yaguar test CA"))
        .issuer_name(_name("yaguar test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    files = {"ca": _write(directory / "ca", ca_key, ca)}

    def issue(cn: str, server: bool) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        files[cn] = _write(directory / cn, key, cert)
        return cert

    issue("server", server=True)
    for cn in clients:
        issue(cn, server=False)
    return files


def tls_listener(port: int, pki: dict[str, tuple[Path, Path]], directory: Path, extra: str) -> str:
    (directory / "acl").write_text(ACL)
    # Started as root, Mosquitto would drop to its own user, who cannot read pytest's 0700 temp dirs.
    user = "user root\n" if os.geteuid() == 0 else ""
    return (
        f"{user}listener {port} 127.0.0.1\n"
        f"cafile {pki['ca'][0]}\ncertfile {pki['server'][0]}\nkeyfile {pki['server'][1]}\n"
        f"acl_file {directory / 'acl'}\n{extra}"
    )


def put_frames(spool: Spool, path: Path, count: int, device: str = "cam-01") -> None:
    for index in range(count):
        spool.put(
            path.read_bytes(),
            device=device,
            capture_id=f"e.{index}",
            event_id="e",
            burst_index=index,
            burst_size=count,
            captured_at=datetime.now(UTC),
            trigger="test",
        )


def test_client_certificate(tmp_path: Path, images: Path) -> None:
    pki = make_pki(tmp_path, ["cam-01", "station"])
    port = free_port()
    extra = tls_listener(port, pki, tmp_path, "require_certificate true\nuse_identity_as_username true\n")
    with Broker(tmp_path / "broker", port=port, extra=extra) as broker:
        ca = pki["ca"][0]
        with StationDouble(broker, tls=(ca, *pki["station"])) as station:
            spool = Spool(tmp_path / "spool")
            put_frames(spool, images / "classic" / "dog.jpg", 3)
            tls = TlsConfig(ca_file=ca, cert_file=pki["cam-01"][0], key_file=pki["cam-01"][1])
            publisher = Publisher(spool, MqttConfig(host="127.0.0.1", port=port, tls=tls), "cam-01").start()
            try:
                assert wait_until(lambda: spool.depth == 0, 15)
            finally:
                publisher.stop()
            assert len(station.stored) == 3


def _agent_mqtt(port: int, ca: Path, password: str) -> MqttConfig:
    config = parse_config(
        {
            "device_id": "cam-01",
            "camera": {"type": "replay", "folder": "/nonexistent"},
            "mqtt": {"host": "127.0.0.1", "port": port, "tls": {"ca_file": str(ca)}, "reconnect_min_s": 0.1},
        },
        environ={"YAGUAR_MQTT_PASSWORD": password},  # the secret never lives in the TOML file
    )
    return config.mqtt


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd is not installed")
def test_password_from_the_environment_and_a_wrong_one(
    tmp_path: Path, images: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    pki = make_pki(tmp_path, [])
    passwords = tmp_path / "passwd"
    for user, password in (("cam-01", "right-horse"), ("station", "st-pass")):
        flag = [] if passwords.exists() else ["-c"]
        subprocess.run(["mosquitto_passwd", "-b", *flag, str(passwords), user, password], check=True)
    port = free_port()
    extra = tls_listener(port, pki, tmp_path, f"password_file {passwords}\n")
    ca = pki["ca"][0]
    with (
        Broker(tmp_path / "broker", port=port, extra=extra) as broker,
        StationDouble(broker, tls=(ca, None, None), credentials=("station", "st-pass")) as station,
    ):
        spool = Spool(tmp_path / "spool")
        put_frames(spool, images / "classic" / "eagle.jpg", 2)
        wrong = Publisher(spool, _agent_mqtt(port, ca, "wrong-horse"), "cam-01").start()
        try:
            assert not wrong.connected.wait(1.5)
        finally:
            wrong.stop()
        assert spool.depth == 2  # nothing lost while refused
        assert "broker refused the connection" in caplog.text
        right = Publisher(spool, _agent_mqtt(port, ca, "right-horse"), "cam-01").start()
        try:
            assert wait_until(lambda: spool.depth == 0, 15)
        finally:
            right.stop()
        assert len(station.stored) == 2
