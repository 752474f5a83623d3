"""The station's own certificate authority: the broker's TLS certificate, one client certificate per
device (its common name is the device id, so Mosquitto's ``use_identity_as_username`` makes it the MQTT
user), and a revocation list for devices that are locked out.

Everything is made with the ``cryptography`` library (EC P-256 keys, SHA-256 signatures) and kept in one
directory: ``ca.key`` (mode 0600), ``ca.crt``, ``crl.pem``, ``issued.json`` (device id -> serial) and
the issued ``<name>.crt``/``<name>.key`` pairs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import grp
import ipaddress
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from yaguar.durable import atomic_write


class IndexEntry(TypedDict):
    """One device certificate in index.json (JSON keeps the serial an int)."""

    serial: int
    revoked: bool


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only, atomically (temp file, rename)."""
    atomic_write(path, data, mode=0o600)


BROKER_GROUP = "mosquitto"


def broker_readable(path: Path) -> None:
    """Mode 0640, group ``mosquitto`` where that group exists: the broker drops root before reading."""
    os.chmod(path, 0o640)
    try:
        grp.getgrnam(BROKER_GROUP)
    except KeyError:
        return
    with contextlib.suppress(PermissionError):
        shutil.chown(path, group=BROKER_GROUP)


def write_public(path: Path, data: bytes) -> None:
    atomic_write(path, data, fsync=False)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class IssuedPair:
    cert_file: Path
    key_file: Path
    serial: int


class StationCA:
    """A small CA in ``directory``; ``ensure()`` creates it the first time."""

    def __init__(self, directory: Path, days: int = 3650) -> None:
        self.directory = Path(directory)
        self.days = days
        self.key_file = self.directory / "ca.key"
        self.cert_file = self.directory / "ca.crt"
        self.crl_file = self.directory / "crl.pem"
        self.index_file = self.directory / "issued.json"

    def ensure(self) -> StationCA:
        if self.cert_file.exists() and self.key_file.exists():
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Yaguar station CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=self.days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        write_private(self.key_file, _key_pem(key))
        write_public(self.cert_file, cert.public_bytes(serialization.Encoding.PEM))
        self.write_crl()
        return self

    def _load(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key, x509.load_pem_x509_certificate(self.cert_file.read_bytes())

    def _index(self) -> dict[str, IndexEntry]:
        if not self.index_file.exists():
            return {}
        return json.loads(self.index_file.read_text())

    def issued(self) -> list[str]:
        """The common names holding a client certificate that is not revoked."""
        return sorted(name for name, entry in self._index().items() if not entry["revoked"])

    def _save_index(self, index: dict[str, IndexEntry]) -> None:
        write_public(self.index_file, json.dumps(index, indent=1, sort_keys=True).encode())

    def issue(self, common_name: str, server_names: list[str] | None = None) -> IssuedPair:
        """A key and certificate for a device (client) or, with ``server_names``, for the broker."""
        ca_key, ca_cert = self._load()
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        serial = x509.random_serial_number()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=self.days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server_names:
            alt: list[x509.GeneralName] = []
            for host in server_names:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    alt.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
            usage = ExtendedKeyUsageOID.SERVER_AUTH
        else:
            usage = ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        stem = "broker" if server_names else common_name
        pair = IssuedPair(self.directory / f"{stem}.crt", self.directory / f"{stem}.key", serial)
        write_private(pair.key_file, _key_pem(key))
        write_public(pair.cert_file, cert.public_bytes(serialization.Encoding.PEM))
        if server_names:
            broker_readable(pair.key_file)
        else:
            index = self._index()
            index[common_name] = {"serial": serial, "revoked": False}
            self._save_index(index)
        return pair

    def revoke(self, common_name: str) -> bool:
        """Put the device's certificate on the revocation list; False when none was issued to it."""
        index = self._index()
        entry = index.get(common_name)
        if entry is None:
            return False
        entry["revoked"] = True
        self._save_index(index)
        self.write_crl()
        for suffix in (".crt", ".key"):
            (self.directory / f"{common_name}{suffix}").unlink(missing_ok=True)
        return True

    def write_crl(self) -> None:
        ca_key, ca_cert = self._load()
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + dt.timedelta(days=self.days))
        )
        for entry in self._index().values():
            if entry.get("revoked"):
                revoked = (
                    x509.RevokedCertificateBuilder()
                    .serial_number(entry["serial"])
                    .revocation_date(now)
                    .build()
                )
                builder = builder.add_revoked_certificate(revoked)
        crl = builder.sign(ca_key, hashes.SHA256())
        write_public(self.crl_file, crl.public_bytes(serialization.Encoding.PEM))
