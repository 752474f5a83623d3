"""The tests' Docker: our own daemon (docker/dev-cache.sh: no bridge network, no iptables, its own socket
and a data root under ~/.cache/yaguar/docker where images persist between runs), the docker CLI against
it, and containers that run on the host network only, so nothing leaves loopback. Other checkouts on
the machine may use the same daemon: a shared lock on users.lock keeps it up while this test runs, and
the last user out stops it (dev-cache.sh stop)."""

from __future__ import annotations

import fcntl
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
    """The daemon (started here unless it runs already), this checkout's image, and ``docker`` commands."""

    def __init__(self) -> None:
        # Debian's client (docker.io), the one CI has; dev-cache.sh picks the same
        self.cli = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{cache_dir()}/docker.sock", "DOCKER_BUILDKIT": "1"}
        self.users_lock: Any = None
        self.image = ""

    def script(self, command: str, timeout: float = 120) -> str:
        """docker/dev-cache.sh COMMAND (start, stop, check, build); its output, or why it failed."""
        done = subprocess.run(
            [str(CACHE_SCRIPT), command], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"docker/dev-cache.sh {command}: {(done.stdout + done.stderr).strip()}")
        return done.stdout.strip()

    def start(self) -> Docker:
        cache_dir().mkdir(parents=True, exist_ok=True)
        self.users_lock = (cache_dir() / "users.lock").open("a")
        fcntl.flock(self.users_lock, fcntl.LOCK_SH)  # in use: no other run stops the daemon meanwhile
        self.script("start")
        self.image = self.script("image-tag")
        return self

    def stop(self) -> None:
        """Stops the daemon unless another run still uses it (then that run stops it at its end)."""
        if self.users_lock is not None:
            fcntl.flock(self.users_lock, fcntl.LOCK_UN)
            self.users_lock.close()
            self.users_lock = None
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
