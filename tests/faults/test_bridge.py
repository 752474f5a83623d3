"""A field site bridged to headquarters, with real brokers on loopback: the site's Mosquitto bridges to
the headquarters' production broker (TLS, the site identified by its client certificate, whose name is the
user the ACL allows: `require_certificate` and `use_identity_as_username` on the headquarters listener;
MQTT v5, QoS 1, persistent), with the certificate and the bridge section `yaguar-station sites add` makes. Cameras (the real agent spool and
publisher) send to the field broker; the station at headquarters stores and acks. The link is cut (a
stand-in for 10 minutes: longer than every agent's ack timeout, so they resend), and the headquarters
broker is killed with SIGKILL and restarted: every frame arrives, once."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.broker import Broker
from tests.support.field import SpoolAgent, StationProcess, audit, captured_by, wait_drained
from tests.support.secure_broker import ProductionBroker, secure_setup
from tests.support.small_jpegs import small_real_jpegs
from tests.support.tcp_proxy import TcpProxy
from yaguar.server.sites import FieldFiles, add_site


def test_site_bridge_survives_a_cut_link_and_a_killed_hq_broker(
    tmp_path: Path, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jpegs = small_real_jpegs(images, count=8, width=320)
    hq = secure_setup(tmp_path / "hq", [], auth="certificate")
    hq_broker = ProductionBroker(tmp_path / "hq-broker", hq.devices.ca_dir, hq.devices).start()
    link = TcpProxy(("127.0.0.1", hq_broker.tls_port)).start()
    ca_dir = hq.devices.ca_dir  # the field broker (root here) reads the files where they were made
    files = FieldFiles(str(ca_dir / "ca.crt"), str(ca_dir / "site-rio.crt"), str(ca_dir / "site-rio.key"))
    site = add_site(hq.devices, "rio", "127.0.0.1", link.port, files)
    assert "told to reload" in site.reload
    assert site.password is None and site.cert_file == ca_dir / "site-rio.crt"
    assert "remote_password" not in site.bridge and f"bridge_certfile {site.cert_file}" in site.bridge
    acl = hq.devices.acl_file.read_text()
    assert "user site-rio" in acl and "topic write yaguar/v1/+/frame" in acl
    monkeypatch.setenv("YAGUAR_MQTT_PASSWORD", hq.station_password)
    station = StationProcess(tmp_path / "hq-station", hq_broker, mqtt={"username": "station"}).start()
    # as root Mosquitto becomes user "mosquitto", who cannot enter pytest's tmp
    field = Broker(
        tmp_path / "field-broker", extra=site.bridge + ("user root\n" if os.geteuid() == 0 else "")
    ).start()
    agents = [
        SpoolAgent(
            f"cam-rio-{i}",
            field.host,
            field.port,
            tmp_path / f"spool-{i}",
            jpegs,
            3,
            window=4,
            ack_timeout_s=3,
        )
        for i in range(3)
    ]
    try:
        for agent in agents:
            agent.start()
        for _ in range(2):
            for agent in agents:
                agent.capture_burst()
            time.sleep(0.5)
        link.cut()  # the site alone: cameras keep capturing, the field broker keeps their frames
        for _ in range(3):
            for agent in agents:
                agent.capture_burst()
            time.sleep(2.0)
        link.restore()
        time.sleep(2.0)
        hq_broker.kill()  # a power cut at headquarters
        for agent in agents:
            agent.capture_burst()
        time.sleep(1.0)
        hq_broker.start()
        for agent in agents:
            agent.capture_burst()
        drained = wait_drained(agents, timeout=120)
        result = audit(station, captured_by(agents), agents)
    finally:
        for agent in agents:
            agent.close()
        field.stop()
        link.stop()
        station.stop()
        hq_broker.stop()
    bridge_log = field.log_path.read_text()
    hq_log = hq_broker.log_path.read_text()
    print(f"\n{link.cuts} link cuts; {result.line()}")
    assert link.cuts >= 1
    assert "yaguar-hq-rio" in bridge_log  # the bridge really connected through the link
    # ...and headquarters knew it by its certificate: no password was given, the name is the user
    assert "as yaguar-bridge-rio" in hq_log and "u'site-rio'" in hq_log, hq_log[-2000:]
    assert drained, f"frames still waiting in the spools; {result.line()}"
    assert result.captured == 7 * 3 * 3
    assert (result.lost, result.duplicated, result.corrupt) == (0, 0, 0), result.line()
