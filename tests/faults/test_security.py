"""Who may talk to the broker, against the production config (systemd/mosquitto/yaguar.conf) with the
password file, ACL and certificates that ``yaguar-station devices`` writes: a device cannot publish as
another, strangers and revoked devices cannot log in, and the TLS port speaks only TLS."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from tests.support.secure_broker import ProductionBroker, SecureSetup, secure_setup
from tests.support.small_jpegs import small_real_jpegs
from tests.support.station import running_station
from yaguar.protocol import Kind, build_meta, to_properties, topic
from yaguar.server.devices import add_device, check_password, hash_password, read_password_file, revoke_device
from yaguar.storage.models import DeadLetter, Media


class Login:
    """One connection attempt: did the broker accept it, and what came in afterwards."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        client_id: str,
        ca: Path | None = None,
        cert: tuple[Path, Path] | None = None,
    ) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(60, 120)  # a refused login must not be retried during the test
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca is not None:
            self.client.tls_set(
                ca_certs=str(ca),
                certfile=str(cert[0]) if cert else None,
                keyfile=str(cert[1]) if cert else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self.reason: object = None
        self.answered = threading.Event()
        self.received: list[mqtt.MQTTMessage] = []
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.received.append(m)
        self.port = port

    def _on_connect(self, _c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        self.reason = reason
        self.answered.set()

    def attempt(self, timeout: float = 5.0) -> bool:
        """True when the broker accepted the login."""
        try:
            self.client.connect("127.0.0.1", self.port, keepalive=30)
        except (OSError, ssl.SSLError):
            return False
        self.client.loop_start()
        self.answered.wait(timeout)
        return self.reason is not None and not getattr(self.reason, "is_failure", True)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[tuple[SecureSetup, ProductionBroker]]:
    setup = secure_setup(tmp_path / "secure", ["cam-a", "cam-b", "cam-c"])
    with ProductionBroker(tmp_path / "broker", setup.devices.ca_dir, setup.devices) as broker:
        yield setup, broker


def media_count(station) -> int:
    with station.session_factory() as session:
        return session.scalar(select(func.count(Media.id))) or 0


def frame_for(device: str, seq: int, payload: bytes):
    from datetime import UTC, datetime

    meta = build_meta(
        payload,
        device=device,
        seq=seq,
        capture_id=f"sec-{seq}",
        event_id="sec",
        burst_index=0,
        burst_size=1,
        captured_at=datetime.now(UTC),
        trigger="test",
    )
    return to_properties(meta)


def test_password_hash_is_mosquitto_format() -> None:
    entry = hash_password("s3cret-pass", 101, salt=b"\x01" * 12)
    assert entry.startswith("$7$101$AQEBAQEBAQEBAQEB$")
    assert check_password("s3cret-pass", entry)
    assert not check_password("s3cret-pasS", entry)


def test_device_cannot_publish_or_read_as_another(secure, tmp_path: Path, images: Path) -> None:
    setup, broker = secure
    jpeg = small_real_jpegs(images, count=2, width=160)
    station_login = {"username": "station", "password": setup.station_password}
    with running_station(
        broker,
        tmp_path / "station",
        http=False,
        mqtt=station_login,
        storage={"database_url": setup.db_url},
        ingest={"accept_unknown_devices": False},
    ) as station:
        a = Login(broker.tls_port, "cam-a", setup.passwords["cam-a"], "cam-a", ca=setup.ca.cert_file)
        b = Login(broker.tls_port, "cam-b", setup.passwords["cam-b"], "cam-b", ca=setup.ca.cert_file)
        spy = Login(broker.port, "station", setup.station_password, "spy")
        try:
            assert a.attempt() and b.attempt() and spy.attempt()
            spy.client.subscribe("yaguar/v1/cam-b/#", qos=1)
            a.client.subscribe("yaguar/v1/+/ack", qos=1)  # a wildcard: the ACL must still hide b's acks
            a.client.subscribe("yaguar/v1/cam-b/config", qos=1)
            time.sleep(0.3)
            # a forges a frame of b's (properties say cam-b, so only the ACL can stop it)
            a.client.publish(
                topic("cam-b", Kind.FRAME), jpeg[0], qos=1, properties=frame_for("cam-b", 7, jpeg[0])
            ).wait_for_publish(5)
            a.client.publish(
                topic("cam-b", Kind.STATUS), b'{"v":1,"device":"cam-b","state":"offline"}', qos=1
            )
            # b's own frame and a's own frame go through, and b's ack is sent
            b.client.publish(
                topic("cam-b", Kind.FRAME), jpeg[1], qos=1, properties=frame_for("cam-b", 1, jpeg[1])
            ).wait_for_publish(5)
            a.client.publish(
                topic("cam-a", Kind.FRAME), jpeg[0], qos=1, properties=frame_for("cam-a", 1, jpeg[0])
            ).wait_for_publish(5)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and media_count(station) < 2:
                time.sleep(0.1)  # a short transaction each time: ours would hold the writer's lock
            time.sleep(0.5)  # time for any forged message to show up anywhere
            with station.session_factory() as session:
                rows = session.execute(select(Media.device_id, Media.seq)).all()
                dead = session.scalars(select(DeadLetter.topic)).all()
        finally:
            for login in (a, b, spy):
                login.close()
    assert sorted(rows) == [("cam-a", 1), ("cam-b", 1)], "the forged frame (cam-b seq 7) must not arrive"
    assert dead == []
    forged = [m for m in spy.received if m.topic.endswith("/frame") and m.payload == jpeg[0]]
    assert forged == [], "the broker let cam-a publish on cam-b's topic"
    assert not [m for m in spy.received if m.topic.endswith("/status") and b"offline" in m.payload]
    assert [m.topic for m in a.received if "cam-b" in m.topic] == [], "cam-a read cam-b's acks"
    assert [m.topic for m in a.received] == ["yaguar/v1/cam-a/ack"]


@pytest.mark.parametrize(
    ("username", "password"),
    [(None, None), ("cam-a", "wrong-password"), ("cam-zz", "whatever"), ("cam-a", "")],
    ids=["anonymous", "wrong-password", "unknown-user", "empty-password"],
)
@pytest.mark.parametrize("listener", ["tls", "loopback"])
def test_strangers_are_refused(secure, username: str | None, password: str | None, listener: str) -> None:
    setup, broker = secure
    port, ca = (broker.tls_port, setup.ca.cert_file) if listener == "tls" else (broker.port, None)
    stranger = Login(port, username, password, f"stranger-{listener}", ca=ca)
    friend = Login(port, "cam-c", setup.passwords["cam-c"], f"friend-{listener}", ca=ca)
    try:
        assert not stranger.attempt()
        assert friend.attempt(), "a registered device must get in on the same listener"
    finally:
        stranger.close()
        friend.close()


def test_revoked_device_is_refused(secure) -> None:
    setup, broker = secure
    assert Login(
        broker.tls_port, "cam-c", setup.passwords["cam-c"], "before", ca=setup.ca.cert_file
    ).attempt()
    outcome = revoke_device(setup.devices, setup.session_factory, "cam-c")
    assert "told to reload" in outcome
    assert "cam-c" not in read_password_file(setup.devices.password_file)
    time.sleep(0.5)  # the broker rereads its files on SIGHUP
    after = Login(broker.tls_port, "cam-c", setup.passwords["cam-c"], "after", ca=setup.ca.cert_file)
    try:
        assert not after.attempt()
    finally:
        after.close()
    with setup.session_factory() as session:
        from yaguar.storage.models import Device

        assert session.get(Device, "cam-c").revoked
    # the others are untouched
    other = Login(broker.tls_port, "cam-a", setup.passwords["cam-a"], "other", ca=setup.ca.cert_file)
    try:
        assert other.attempt()
    finally:
        other.close()


def mqtt5_connect_packet(client_id: str = "plain") -> bytes:
    body = b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + struct.pack(">H", len(client_id)) + client_id.encode()
    return bytes([0x10, len(body)]) + body


def test_tls_listener_refuses_plain_tcp(secure) -> None:
    _setup, broker = secure
    with socket.create_connection(("127.0.0.1", broker.tls_port), timeout=5) as sock:
        sock.sendall(mqtt5_connect_packet())
        try:
            answer = sock.recv(64)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"\x20"), "the TLS port answered a plain MQTT CONNECT with a CONNACK"
    # and a client that does not trust the station CA is refused by TLS itself
    ctx = ssl.create_default_context()
    with (
        socket.create_connection(("127.0.0.1", broker.tls_port), timeout=5) as sock,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ctx.wrap_socket(sock, server_hostname="127.0.0.1")


def test_client_certificates_identify_devices_and_revocation_locks_them_out(tmp_path: Path) -> None:
    setup = secure_setup(tmp_path / "secure", [], auth="certificate")
    x = add_device(setup.devices, setup.session_factory, "cam-x")
    y = add_device(setup.devices, setup.session_factory, "cam-y")
    assert x.cert_file is not None and x.key_file is not None and x.password is None
    assert 'cert_file = "/etc/yaguar/cam-x.crt"' in x.agent_toml
    with ProductionBroker(tmp_path / "broker", setup.devices.ca_dir, setup.devices) as broker:
        spy = Login(broker.port, "station", setup.station_password, "spy")
        cam_x = Login(
            broker.tls_port, None, None, "cam-x", ca=setup.ca.cert_file, cert=(x.cert_file, x.key_file)
        )
        no_cert = Login(broker.tls_port, "cam-y", "anything", "no-cert", ca=setup.ca.cert_file)
        try:
            assert spy.attempt() and cam_x.attempt(), "a device with its certificate gets in, no password"
            assert not no_cert.attempt(), "the certificate listener needs a certificate"
            spy.client.subscribe("yaguar/v1/#", qos=1)
            time.sleep(0.3)
            cam_x.client.publish("yaguar/v1/cam-y/heartbeat", b"forged", qos=1).wait_for_publish(5)
            cam_x.client.publish("yaguar/v1/cam-x/heartbeat", b"own", qos=1).wait_for_publish(5)
            time.sleep(0.5)
        finally:
            for login in (cam_x, no_cert):
                login.close()
        assert [(m.topic, m.payload) for m in spy.received] == [("yaguar/v1/cam-x/heartbeat", b"own")]
        # revoke cam-x: its certificate goes on the CRL (the files are deleted; keep a copy as a thief would)
        saved = (x.cert_file.read_bytes(), x.key_file.read_bytes())
        assert "told to reload" in revoke_device(setup.devices, setup.session_factory, "cam-x")
        kept = tmp_path / "kept"
        kept.mkdir()
        (kept / "x.crt").write_bytes(saved[0])
        (kept / "x.key").write_bytes(saved[1])
        time.sleep(0.5)  # the SIGHUP from revoke_device makes Mosquitto reread the CRL: no restart needed
        again = Login(
            broker.tls_port,
            None,
            None,
            "cam-x2",
            ca=setup.ca.cert_file,
            cert=(kept / "x.crt", kept / "x.key"),
        )
        other = Login(
            broker.tls_port, None, None, "cam-y", ca=setup.ca.cert_file, cert=(y.cert_file, y.key_file)
        )
        try:
            assert not again.attempt(), "a revoked certificate must be refused"
            assert other.attempt()
        finally:
            again.close()
            other.close()
            spy.close()
