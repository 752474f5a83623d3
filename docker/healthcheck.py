"""The station container's HEALTHCHECK: healthy when /healthz answers 200 (the database answers, the
broker is connected) and the pipeline can analyse frames (its models loaded). Prints one line saying
what is wrong, which `docker inspect` shows under State.Health. Standard library only, so it is cheap:
it reads the port from the config and asks the running station, importing nothing of yaguar's."""

from __future__ import annotations

import json
import os
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def healthz_url(config: Path) -> str:
    http = tomllib.loads(config.read_text()).get("http", {}) if config.is_file() else {}
    host = str(http.get("host", "127.0.0.1"))
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 (a listening address, read)
    return f"http://{host}:{int(http.get('port', 8080))}/healthz"


def problems(answer: dict[str, Any], status: int) -> list[str]:
    found = []
    if not answer.get("database"):
        found.append("the database does not answer")
    if not answer.get("broker"):
        found.append("no connection to the MQTT broker")
    pipeline = answer.get("pipeline")  # absent when [pipeline] enabled = false
    if isinstance(pipeline, dict) and pipeline.get("problem"):
        found.append(f"frames are not analysed: {pipeline['problem']}")
    if status != 200 and not found:
        found.append(f"/healthz answered {status}")
    return found


def main() -> int:
    url = healthz_url(Path(os.environ.get("YAGUAR_CONFIG", "/etc/yaguar/station.toml")))
    try:
        with urllib.request.urlopen(url, timeout=8) as response:  # noqa: S310 (a fixed http URL on this host)
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:  # 503: degraded, and the body says why
        status, body = exc.code, exc.read()
    except OSError as exc:
        print(f"unhealthy: the station does not answer at {url} ({exc})")
        return 1
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {}
    found = problems(answer, status)
    print(f"unhealthy: {'; '.join(found)}" if found else "healthy: database, broker and pipeline")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
