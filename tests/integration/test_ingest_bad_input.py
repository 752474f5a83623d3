"""Each bad input is refused with a one-line reason in the log, a counter in metrics and a dead-letter
row; the station keeps running and the good frames around it are stored."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from tests.support import jpegs as bad
from tests.support.mqtt_client import mqtt_client
from tests.support.station import API_TOKEN, running_station
from tests.unit.test_protocol_frames import edited, frame_props
from yaguar.protocol import Ack
from yaguar.storage.models import DeadLetter, Device, Media


def _metrics_text(url: str) -> str:
    import asyncio

    async def fetch() -> str:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
            return await response.text()

    return asyncio.run(fetch())


def test_bad_frames_are_dead_lettered_and_the_station_keeps_going(
    broker, tmp_path, images: Path, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="yaguar.server.ingest")
    dog = (images / "classic" / "dog.jpg").read_bytes()
    big = (images / "camera-trap" / "2021-05-28_SYFR0041_deer.JPG").read_bytes()
    empty = (images / "camera-trap" / "error_img.JPG").read_bytes()
    future = datetime.now(UTC) + timedelta(days=400)
    cases = [  # (topic, payload, properties, expected reason)
        ("yaguar/v1/cam-1/frame", bad.png_bytes(), frame_props(bad.png_bytes(), seq=1), "not_jpeg"),
        ("yaguar/v1/cam-1/frame", bad.tiff_bytes(), frame_props(bad.tiff_bytes(), seq=2), "not_jpeg"),
        (
            "yaguar/v1/cam-1/frame",
            bad.truncated(dog),
            frame_props(bad.truncated(dog), seq=3),
            "truncated_jpeg",
        ),
        ("yaguar/v1/cam-1/frame", empty, frame_props(b"x", seq=4), "empty_payload"),
        ("yaguar/v1/cam-1/frame", big, frame_props(big, seq=5), "oversize_payload"),
        ("yaguar/v1/cam-1/frame", dog, None, "bad_properties"),
        (
            "yaguar/v1/cam-1/frame",
            dog,
            edited(frame_props(dog, seq=6), lambda up: [(k, "x" if k == "burst_size" else v) for k, v in up]),
            "bad_properties",
        ),
        ("yaguar/v1/Cam_1/frame", dog, frame_props(dog, seq=7), "bad_device_id"),
        ("yaguar/v1/../frame", dog, frame_props(dog, seq=8), "bad_device_id"),
        ("yaguar/v1/cam-1/frame", dog, frame_props(dog, device="cam-2", seq=9), "device_mismatch"),
        ("yaguar/v1/cam-1/frame", dog, frame_props(dog, seq=10, captured_at=future), "clock_in_future"),
        (
            "yaguar/v1/cam-1/frame",
            bad.with_dimensions(dog, 65535, 65535),
            frame_props(bad.with_dimensions(dog, 65535, 65535), seq=11),
            "image_too_large",
        ),
        ("yaguar/v1/cam-1/heartbeat", b"{not json", None, "bad_json"),
        ("yaguar/v1/cam-1/heartbeat", json.dumps({"device": "cam-1"}).encode(), None, "bad_message"),
    ]
    with (
        running_station(broker, tmp_path / "st", ingest={"max_payload_bytes": 1024 * 1024}) as station,
        mqtt_client(broker, "attacker") as client,
    ):
        client.subscribe("yaguar/v1/cam-1/ack")
        for topic, payload, props, _ in cases:
            client.publish(topic, payload, props)
        client.publish("yaguar/v1/cam-1/frame", dog, frame_props(dog, seq=100))  # a good frame after the bad
        # every frame with a readable seq on a valid device topic gets an Ack, rejected or stored
        acks = [Ack.model_validate_json(m.payload) for m in client.wait_for(11)]
        by_seq = {a.seq: a for a in acks}
        assert by_seq[100].status == "stored"
        assert by_seq[1].status == "rejected" and by_seq[1].reason == "not_jpeg"
        assert by_seq[11].reason == "image_too_large"

        with station.session_factory() as session:
            letters = session.scalars(select(DeadLetter).order_by(DeadLetter.id)).all()
            assert sorted(d.reason for d in letters) == sorted(c[3] for c in cases)
            assert all(d.detail and "\n" not in d.detail for d in letters)
            assert [m.seq for m in session.scalars(select(Media)).all()] == [100]
            # a device id that tried a path never becomes a device
            assert {d.id for d in session.scalars(select(Device)).all()} == {"cam-1"}

        metrics = _metrics_text(station.http_url)
        assert 'yaguar_messages_rejected_total{kind="frame",reason="not_jpeg"} 2.0' in metrics
        assert 'yaguar_messages_rejected_total{kind="heartbeat",reason="bad_json"} 1.0' in metrics
        assert "yaguar_frames_stored_total 1.0" in metrics

    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert len(refusals) == len(cases)
    assert all("\n" not in line for line in refusals)


def test_unknown_and_revoked_devices_are_refused(broker, tmp_path, images: Path) -> None:
    dog = (images / "classic" / "dog.jpg").read_bytes()
    with (
        running_station(broker, tmp_path / "st", ingest={"accept_unknown_devices": False}) as station,
        mqtt_client(broker, "t") as client,
    ):
        with station.session_factory.begin() as session:
            session.add(Device(id="cam-ok", registered=True))
            session.add(Device(id="cam-gone", registered=True, revoked=True))
        for device in ("cam-ok", "cam-new", "cam-gone"):
            client.subscribe(f"yaguar/v1/{device}/ack")
            client.publish(f"yaguar/v1/{device}/frame", dog, frame_props(dog, device=device, seq=1))
        acks = {m.topic.split("/")[2]: Ack.model_validate_json(m.payload) for m in client.wait_for(3)}
        assert acks["cam-ok"].status == "stored"
        assert (acks["cam-new"].status, acks["cam-new"].reason) == ("rejected", "unknown_device")
        assert (acks["cam-gone"].status, acks["cam-gone"].reason) == ("rejected", "revoked_device")


@pytest.mark.parametrize("same_bytes", [True, False])
def test_replayed_seq(broker, tmp_path, images: Path, same_bytes: bool) -> None:
    dog = (images / "classic" / "dog.jpg").read_bytes()
    eagle = (images / "classic" / "eagle.jpg").read_bytes()
    with running_station(broker, tmp_path / "st") as station, mqtt_client(broker, "t") as client:
        client.subscribe("yaguar/v1/cam-1/ack")
        client.publish("yaguar/v1/cam-1/frame", dog, frame_props(dog, seq=5))
        second = dog if same_bytes else eagle
        client.publish("yaguar/v1/cam-1/frame", second, frame_props(second, seq=5))
        acks = [Ack.model_validate_json(m.payload) for m in client.wait_for(2)]
        assert acks[0].status == "stored"
        if same_bytes:  # a replay is a duplicate, not an error
            assert acks[1].status == "duplicate"
        else:
            assert (acks[1].status, acks[1].reason) == ("rejected", "seq_conflict")
        with station.session_factory() as session:
            assert len(session.scalars(select(Media)).all()) == 1
            assert len(session.scalars(select(DeadLetter)).all()) == (0 if same_bytes else 1)


def test_api_needs_a_token_and_serves_media(broker, tmp_path, images: Path) -> None:
    import asyncio

    dog = (images / "classic" / "dog.jpg").read_bytes()
    with running_station(broker, tmp_path / "st") as station, mqtt_client(broker, "t") as client:
        client.subscribe("yaguar/v1/cam-1/ack")
        for seq in range(3):
            client.publish("yaguar/v1/cam-1/frame", dog, frame_props(dog, seq=seq))
        client.wait_for(3)
        url = station.http_url
        auth = {"Authorization": f"Bearer {API_TOKEN}"}

        async def run() -> None:
            async with aiohttp.ClientSession() as http:
                for path in ("/api/v1/devices", "/api/v1/media", "/api/v1/media/1", "/api/v1/media/1/image"):
                    async with http.get(url + path) as r:
                        assert r.status == 401, path
                    async with http.get(url + path, headers={"Authorization": "Bearer wrong"}) as r:
                        assert r.status == 401, path
                async with http.get(url + "/api/v1/media?limit=2", headers=auth) as r:
                    page = await r.json()
                assert [m["seq"] for m in page["items"]] == [2, 1]
                async with http.get(
                    url + f"/api/v1/media?limit=2&before_id={page['next_before_id']}", headers=auth
                ) as r:
                    assert [m["seq"] for m in (await r.json())["items"]] == [0]
                async with http.get(url + "/api/v1/media?device=cam-9", headers=auth) as r:
                    assert (await r.json())["items"] == []
                async with http.get(url + "/api/v1/media?since=2026-01-01T00:00:00", headers=auth) as r:
                    assert r.status == 400  # a time without its offset is refused
                async with http.get(url + "/api/v1/media/1/image", headers=auth) as r:
                    assert r.status == 200 and await r.read() == dog
                for missing in ("/api/v1/media/999/image", "/api/v1/media/..%2F..%2Fetc%2Fpasswd/image"):
                    async with http.get(url + missing, headers=auth) as r:
                        assert r.status == 404, missing
                async with http.get(url + "/api/v1/devices", headers=auth) as r:
                    assert [d["id"] for d in (await r.json())["items"]] == ["cam-1"]
                async with http.get(url + "/healthz") as r:
                    assert r.status == 200 and (await r.json())["broker"] is True

        asyncio.run(run())


def test_media_path_outside_the_root_is_not_served(broker, tmp_path, images: Path) -> None:
    """A row whose path tries to leave the media root (a tampered database) is a 404, not a file."""
    import asyncio

    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"\xff\xd8 secret")
    dog = (images / "classic" / "dog.jpg").read_bytes()
    with running_station(broker, tmp_path / "st") as station, mqtt_client(broker, "t") as client:
        client.subscribe("yaguar/v1/cam-1/ack")
        client.publish("yaguar/v1/cam-1/frame", dog, frame_props(dog, seq=1))
        client.wait_for(1)
        with station.session_factory.begin() as session:
            session.scalars(select(Media)).one().path = "../../secret.jpg"

        async def run() -> int:
            async with (
                aiohttp.ClientSession() as http,
                http.get(
                    f"{station.http_url}/api/v1/media/1/image",
                    headers={"Authorization": f"Bearer {API_TOKEN}"},
                ) as r,
            ):
                return r.status

        assert asyncio.run(run()) == 404
