"""The tests' Docker: our own daemon (docker/dev-cache.sh: no bridge network, no iptables, its own socket
and a data root under ~/.cache/yaguar/docker where images persist between runs), the docker CLI against
it, and containers that run on the host network only, so nothing leaves loopback."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CACHE_SCRIPT = REPO / "docker" / "dev-cache.sh"


def cache_dir() -> Path:
    """Where docker/dev-cache.sh keeps the daemon's socket and data (the same default as the script)."""
    return Path(os.environ.get("YAGUAR_DOCKER_CACHE") or Path.home() / ".cache" / "yaguar" / "docker")


class Docker:
    """The daemon (started here unless it runs already) and ``docker`` commands against it."""

    def __init__(self) -> None:
        # Debian's client (docker.io), the one CI has; dev-cache.sh picks the same
        self.cli = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{cache_dir()}/docker.sock", "DOCKER_BUILDKIT": "1"}
        self.started = False

    def script(self, command: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [str(CACHE_SCRIPT), command], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"docker/dev-cache.sh {command}: {(done.stdout + done.stderr).strip()}")
        return done.stdout.strip()

    def start(self) -> Docker:
        self.started = self.script("start").splitlines()[-1] == "started"
        return self

    def stop(self) -> None:
        if self.started:  # a daemon that was up before this test is left as it was
            self.script("stop")

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        done = subprocess.run(
            [self.cli, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {(done.stdout + done.stderr).strip()[-3000:]}")
        return done.stdout.strip()

    def run_host_network(self, name: str, image: str, options: Sequence[str], *command: str) -> str:
        """``docker run -d`` on the host's network: the only network our containers get."""
        return self("run", "-d", "--name", name, "--network", "host", *options, image, *command)

    def health(self, name: str) -> dict[str, Any]:
        """The container's State.Health: Status (starting, healthy, unhealthy) and the checks' Log."""
        return dict(json.loads(self("inspect", "-f", "{{json .State.Health}}", name)) or {})

    def wait_health(self, name: str, status: str, timeout: float, contains: str = "") -> dict[str, Any]:
        """Wait until the health check says ``status`` (and its last output contains ``contains``)."""
        deadline = time.monotonic() + timeout
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            health = self.health(name)
            log = health.get("Log") or [{}]
            if health.get("Status") == status and contains in str(log[-1].get("Output", "")):
                return health
            if self("inspect", "-f", "{{.State.Running}}", name) != "true":
                break
            time.sleep(1)
        raise AssertionError(f"{name} not {status} ({contains!r}): {health}\n{self.logs(name)[-3000:]}")

    def logs(self, name: str) -> str:
        done = subprocess.run(
            [self.cli, "logs", name], env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        return done.stdout + done.stderr
