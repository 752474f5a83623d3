"""`yaguar-station sites add`: a site's identity at headquarters follows `[devices] auth`. With passwords
the bridge section logs in as the site's user; with certificates the site gets a client certificate from
the station CA named after its user (the ACL allows it; `sites remove` revokes it and takes it out), and the
bridge section carries no secret. The bridge itself is tested end to end in tests/faults/test_bridge.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from yaguar.server.devices import DevicesConfig, read_password_file, site_users
from yaguar.server.sites import FieldFiles, add_site, remove_site

FILES = FieldFiles("/etc/mosquitto/yaguar/hq-ca.crt")


def devices(tmp_path: Path, auth: str) -> DevicesConfig:
    return DevicesConfig(
        auth=auth,  # type: ignore[arg-type]
        password_file=tmp_path / "passwd",
        acl_file=tmp_path / "acl",
        ca_dir=tmp_path / "ca",
        broker_pid_file=None,
    )


def test_a_site_with_a_password(tmp_path: Path) -> None:
    site = add_site(devices(tmp_path, "password"), "rio", "hq.example.org", 8883, FILES)
    assert site.password and site.cert_file is None
    assert f"remote_username site-rio\nremote_password {site.password}\n" in site.bridge
    assert (
        "bridge_certfile" not in site.bridge
        and "bridge_cafile /etc/mosquitto/yaguar/hq-ca.crt" in site.bridge
    )
    assert "site-rio" in read_password_file(tmp_path / "passwd")
    assert "user site-rio\ntopic write yaguar/v1/+/frame" in (tmp_path / "acl").read_text()


def test_a_site_with_a_certificate_replaces_its_password(tmp_path: Path) -> None:
    add_site(devices(tmp_path, "password"), "rio", "hq.example.org", 8883, FILES)
    config = devices(tmp_path, "certificate")
    site = add_site(config, "rio", "hq.example.org", 8883, FILES)
    assert site.password is None and site.cert_file is not None and site.key_file is not None
    assert "remote_password" not in site.bridge and "remote_username" not in site.bridge
    assert (
        "bridge_certfile /etc/mosquitto/yaguar/hq-site.crt\nbridge_keyfile /etc/mosquitto/yaguar/hq-site.key\n"
        in (site.bridge)
    )
    assert "site-rio" not in read_password_file(tmp_path / "passwd"), "the old password is no way in"
    cert = x509.load_pem_x509_certificate(site.cert_file.read_bytes())
    ca = x509.load_pem_x509_certificate((tmp_path / "ca" / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "site-rio"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert site_users(config) == ["site-rio"]
    assert "user site-rio\n" in (tmp_path / "acl").read_text()
    # A site removed: its certificate on the revocation list the broker reads, its user out of the ACL
    add_site(config, "sur", "hq.example.org", 8883, FILES)
    remove_site(config, "rio")
    crl = x509.load_pem_x509_crl((tmp_path / "ca" / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    acl = (tmp_path / "acl").read_text()
    assert site_users(config) == ["site-sur"] and "user site-rio" not in acl and "user site-sur" in acl
    with pytest.raises(LookupError):
        remove_site(config, "nowhere")
