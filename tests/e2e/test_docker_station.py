"""The slow Docker test: the station's image (Dockerfile, docker/entrypoint.sh, docker/healthcheck.py)
built and run as a user would, on our own Docker daemon with no bridge network and no iptables rules;
containers run on the host network only, so no traffic leaves loopback.

It runs once in the suite and is kept short by caching: `./dev.sh setup` (docker/dev-cache.sh prepare)
makes the Debian base image with debootstrap, the wheelhouse and a first build, so here the build
redoes only the layers that changed, with no network (--network none, pip --no-index).

1. The container starts with empty data, media and models volumes and a config naming the test's
   Mosquitto; its entrypoint fetches the detector from a local mirror into the models volume, creates the
   database and a first admin; the HEALTHCHECK turns healthy; a camera's bursts are analysed (REST API).
2. `docker kill`, then a new container on the same volumes: frames, events and the admin are kept, the
   models are not fetched again, and a new burst is analysed.
3. A container whose models volume is empty and whose mirror has no models says so in its log, and its
   health check turns unhealthy with the reason.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support.broker import Broker, free_port
from tests.support.docker import REPO, Docker
from tests.support.field import SpoolAgent
from tests.support.file_server import serving
from tests.support.small_jpegs import small_real_jpegs
from yaguar.engine.manifest import find_manifest

pytestmark = [pytest.mark.slow, pytest.mark.processes]
TOKEN = "docker-test-token"
UID = 10001  # the image's yaguar user (Dockerfile)
VOLUMES = ("data", "media", "models")


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    daemon = Docker().start()
    try:
        daemon.script("check")  # the base image and the wheelhouse that ./dev.sh setup caches
        started = time.monotonic()
        daemon.script("build", timeout=900)  # this checkout's image: only the layers that changed
        print(f"image built in {time.monotonic() - started:.1f} s")
        yield daemon
    finally:
        daemon.stop()


def station_config(folder: Path, broker: Broker, http_port: int) -> Path:
    """The image's own default config (docker/station.toml), pointed at the test's broker and port."""
    text = (REPO / "docker" / "station.toml").read_text()
    for old, new in (
        ("port = 1883  ", f"port = {broker.port}  "),
        ('username = "station"\n', ""),
        ('host = "0.0.0.0"\nport = 8080', f'host = "127.0.0.1"\nport = {http_port}'),
        ('classifiers = ["mobilenet_v2_imagenet_quant", "mobilenet_v2_inat_bird_quant"]', "classifiers = []"),
        # the test's broker lets anyone in, so there is no `devices add` step
        ("accept_unknown_devices = false", "accept_unknown_devices = true"),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    folder.mkdir(parents=True)
    (folder / "station.toml").write_text(text)
    for path in (folder, folder / "station.toml"):
        os.chown(path, UID, UID)
    return folder


class Container:
    """One station container on named volumes (kept across containers until ``remove_volumes``)."""

    def __init__(self, docker: Docker, config: Path, env: dict[str, str]) -> None:
        self.docker, self.config, self.env = docker, config, env
        self.tag = uuid.uuid4().hex[:8]
        self.volumes = {part: f"yaguar-test-{part}-{self.tag}" for part in VOLUMES}
        self.names: list[str] = []

    def start(self, health_options: tuple[str, ...]) -> str:
        name = f"yaguar-test-{self.tag}-{len(self.names)}"
        options = ["-v", f"{self.config}:/etc/yaguar", *health_options]
        for part, volume in self.volumes.items():
            options += ["-v", f"{volume}:/var/lib/yaguar/{part}"]
        for key, value in self.env.items():
            options += ["-e", f"{key}={value}"]
        self.docker.run_host_network(name, self.docker.image, options)
        self.names.append(name)
        return name

    def remove(self) -> None:
        for name in self.names:
            self.docker("rm", "-f", name, check=False)
        self.docker("volume", "rm", *self.volumes.values(), check=False)


def media(http_port: int) -> list[dict[str, Any]]:
    answer = requests.get(
        f"http://127.0.0.1:{http_port}/api/v1/media?device=cam-01&limit=100",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    answer.raise_for_status()
    return list(answer.json()["items"])


def wait_analysed(http_port: int, count: int, timeout: float = 180) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        items = media(http_port)
        if sum(m["process_state"] != "pending" for m in items) >= count:
            break
        time.sleep(0.5)
    return items


# healthy as soon as a check passes; a failing check counts only after the start period
STARTING = ("--health-interval", "2s", "--health-start-period", "600s")
STRICT = ("--health-interval", "2s", "--health-start-period", "1s", "--health-retries", "1")


@pytest.mark.timeout(900)
def test_station_container_analyses_frames_and_keeps_its_data(
    docker: Docker, broker: Broker, tmp_path: Path, models_dir: Path, images: Path
) -> None:
    detector = find_manifest("yolox_nano")
    labels = detector.labels.file or ""
    http_port, lonely_port = free_port(), free_port()
    with (
        serving({detector.file: models_dir / detector.file, labels: models_dir / labels}) as mirror,
        serving({}) as empty_mirror,
        Broker(tmp_path / "lonely-broker") as lonely_broker,
    ):
        station = Container(
            docker,
            station_config(tmp_path / "config", broker, http_port),
            {
                "YAGUAR_MODEL_BASE_URL": mirror.url.rstrip("/"),
                "YAGUAR_API_TOKENS": TOKEN,
                "YAGUAR_ADMIN": "ana",
            },
        )
        # 3. started now, checked at the end: the same image with no models anywhere
        lonely = Container(
            docker,
            station_config(tmp_path / "lonely-config", lonely_broker, lonely_port),
            {"YAGUAR_MODEL_BASE_URL": empty_mirror.url.rstrip("/")},
        )
        camera = SpoolAgent(
            "cam-01", broker.host, broker.port, tmp_path / "spool", small_real_jpegs(images, 9), 3
        )
        try:
            began = time.monotonic()
            first = station.start(STARTING)
            lonely_name = lonely.start(STRICT)
            docker.wait_health(first, "healthy", timeout=300)
            print(f"healthy after {time.monotonic() - began:.1f} s")
            assert [name for name, _ in mirror.requests] == [detector.file, labels]
            log = docker.logs(first)
            assert "First admin: ana, password:" in log, log[-3000:]

            camera.start()
            camera.capture_burst()
            camera.capture_burst()
            items = wait_analysed(http_port, 6)
            print(f"6 analysed after {time.monotonic() - began:.1f} s")
            assert len(items) == 6 and all(m["process_state"] != "pending" for m in items), items
            before = {m["id"]: (m["sha256"], m["process_state"], m["event_id"]) for m in items}

            # 2. killed, and a new container on the same volumes
            docker("kill", first)
            second = station.start(STARTING)
            docker.wait_health(second, "healthy", timeout=300)
            print(f"restarted, healthy after {time.monotonic() - began:.1f} s")
            assert len(mirror.requests) == 2  # the models volume kept them: not fetched again
            log = docker.logs(second)
            assert "There are dashboard users already: no new admin." in log, log[-3000:]
            kept = {m["id"]: (m["sha256"], m["process_state"], m["event_id"]) for m in media(http_port)}
            assert kept == before
            camera.capture_burst()
            items = wait_analysed(http_port, 9)
            assert sum(m["process_state"] != "pending" for m in items) == 9, items
            print(f"9 analysed after {time.monotonic() - began:.1f} s")

            # 3. no models: said in the log, and the health check says why it is unhealthy
            health = docker.wait_health(lonely_name, "unhealthy", timeout=300, contains="not analysed")
            assert detector.file in health["Log"][-1]["Output"], health
            print(f"no models: unhealthy after {time.monotonic() - began:.1f} s")
            log = docker.logs(lonely_name)
            assert f"{detector.ident}: MISSING /var/lib/yaguar/models/{detector.file}" in log, log[-3000:]
            assert "[yaguar-docker] models missing" in log, log[-3000:]
        finally:
            camera.close()
            station.remove()
            lonely.remove()


def test_compose_file_runs_the_station_broker_and_optional_postgres() -> None:
    """docker-compose.yml as Compose reads it (`docker-compose config`): host network everywhere, the GPU
    and the four volumes in the station, PostgreSQL only with its profile."""
    compose = ["docker-compose", "-f", str(REPO / "docker-compose.yml")]
    plain = yaml.safe_load(
        subprocess.run([*compose, "config"], capture_output=True, text=True, check=True).stdout
    )
    services = plain["services"]
    assert sorted(services) == ["broker", "postgres", "station"]
    assert services["postgres"]["profiles"] == ["postgres"]  # started only with --profile postgres
    assert "profiles" not in services["station"] and "profiles" not in services["broker"]
    station = services["station"]
    assert {s["network_mode"] for s in services.values()} == {"host"}
    assert station["devices"] == ["/dev/dri:/dev/dri"]
    mounts = {v.split(":")[1] for v in station["volumes"]}
    assert {
        "/etc/yaguar",
        "/var/lib/yaguar/data",
        "/var/lib/yaguar/media",
        "/var/lib/yaguar/models",
    } <= mounts
    assert station["build"]["args"]["BASE_IMAGE"]
