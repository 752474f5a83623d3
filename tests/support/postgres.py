"""A throwaway PostgreSQL cluster on a free loopback port, started by the test run as the `postgres`
user (the server refuses to run as root). Skips where PostgreSQL's server binaries are missing."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.broker import free_port


def _bin_dir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Yield a SQLAlchemy URL for an empty database on a private cluster."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server is not installed (the README's setup installs the postgresql package)")
    if os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("starting PostgreSQL needs root (to run it as the postgres user)")
    workdir = Path(tempfile.mkdtemp(prefix="yaguar-pg-"))
    shutil.chown(workdir, "postgres", "postgres")
    data, port = workdir / "data", free_port()

    def as_postgres(*args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=120
        )

    try:
        as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-U", "yaguar", "--auth=trust", "-E", "UTF8")
        options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        as_postgres(
            str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", str(workdir / "log"), "start"
        )
        try:
            as_postgres(
                str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "yaguar", "yaguar"
            )
            yield f"postgresql+psycopg://yaguar@127.0.0.1:{port}/yaguar"
        finally:
            as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
