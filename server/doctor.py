"""``yaguar-station doctor``: what this station is missing, in plain words, one line per check, each
with what to do. Checks the models, the broker, the database, the media folder, the OpenCL device and
the time sync; exits 1 when something needs fixing."""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import StationConfig

CONNECT_TIMEOUT_S = 5.0
TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised


@dataclass
class Finding:
    ok: bool
    what: str
    detail: str  # what was found, or what to do about it


def check_models(config: StationConfig) -> Finding:
    from yaguar.engine.analyser import resolve_model_dir
    from yaguar.engine.manifest import ManifestError, checksum_ok, find_manifest
    from yaguar.engine.models_cli import presence

    pipeline = config.pipeline
    if not pipeline.enabled:
        return Finding(True, "models", "the pipeline is off ([pipeline] enabled = false): no models needed")
    try:
        model_dir = resolve_model_dir(pipeline)
    except ManifestError as exc:
        return Finding(False, "models", str(exc))
    problems = []
    for name in [pipeline.detector, *pipeline.classifiers]:
        try:
            manifest = find_manifest(name, [pipeline.manifest_dir] if pipeline.manifest_dir else None)
        except ManifestError as exc:
            problems.append(f"{name}: {exc}")
            continue
        path = manifest.model_path(model_dir)
        if not path.is_file():
            problems.append(
                f"{manifest.ident} is missing ({path}): run `yaguar models fetch {manifest.name}`"
            )
        elif presence(manifest, model_dir) == "no labels":
            problems.append(f"{manifest.ident} has no labels file {manifest.labels.file} in {model_dir}")
        elif pipeline.verify_sha256 and not checksum_ok(manifest, path):
            problems.append(f"{manifest.ident}: {path.name} is not the file its manifest names (sha256)")
    if problems:
        return Finding(False, "models", "; ".join(problems))
    return Finding(
        True, "models", f"{1 + len(pipeline.classifiers)} models present and verified in {model_dir}"
    )


def check_broker(config: StationConfig) -> Finding:
    import paho.mqtt.client as mqtt

    mqtt_config = config.mqtt
    where = f"{mqtt_config.host}:{mqtt_config.port}"
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"{mqtt_config.client_id}-doctor"[:64],
        protocol=mqtt.MQTTv5,
    )
    if mqtt_config.username:
        password = mqtt_config.password.get_secret_value() if mqtt_config.password else None
        client.username_pw_set(mqtt_config.username, password)
    tls = mqtt_config.tls
    if tls is not None:
        for path in (tls.ca_file, tls.cert_file, tls.key_file):
            if path is not None and not Path(path).is_file():
                return Finding(False, "broker", f"the TLS file {path} ([mqtt.tls]) does not exist")
        client.tls_set(
            ca_certs=str(tls.ca_file),
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
        )
    answered = threading.Event()
    reason: list[str] = []

    def on_connect(_c: object, _u: object, _f: object, code: object, _p: object = None) -> None:
        reason.append(str(code))
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(mqtt_config.host, mqtt_config.port, keepalive=10)
    except OSError as exc:
        return Finding(
            False,
            "broker",
            f"cannot reach the broker at {where} ({exc.strerror or exc}): is Mosquitto running?",
        )
    client.loop_start()
    try:
        if not answered.wait(CONNECT_TIMEOUT_S):
            return Finding(
                False, "broker", f"the broker at {where} did not answer within {CONNECT_TIMEOUT_S:.0f} s"
            )
    finally:
        client.disconnect()
        client.loop_stop()
    if reason[0] != "Success":
        return Finding(False, "broker", f"the broker at {where} refused us: {reason[0]} (user and password?)")
    return Finding(True, "broker", f"connected to {where}")


def check_database(config: StationConfig) -> Finding:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import make_url

    from yaguar.server.schema import alembic_config
    from yaguar.storage import make_db_engine

    url = make_url(config.storage.database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).is_file():
        return Finding(False, "database", f"{url.database} does not exist: run `yaguar-station db upgrade`")
    engine = make_db_engine(config.storage.database_url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        heads = set(ScriptDirectory.from_config(alembic_config(shown)).get_heads())
    except Exception as exc:  # any failure to open it is the finding; its text says which
        return Finding(False, "database", f"cannot open {shown}: {' '.join(str(exc).split())[:200]}")
    finally:
        engine.dispose()
    if current != heads:
        return Finding(False, "database", f"{shown} is not up to date: run `yaguar-station db upgrade`")
    return Finding(True, "database", f"{shown} is up to date")


def check_media(config: StationConfig) -> Finding:
    root = Path(config.storage.media_root)
    if not root.is_dir():
        return Finding(
            False, "media folder", f"{root} does not exist: create it, owned by the station's user"
        )
    try:
        with tempfile.NamedTemporaryFile(dir=root, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Finding(
            False, "media folder", f"cannot write in {root} ({exc.strerror}): frames would be lost"
        )
    free = shutil.disk_usage(root).free / 1e9
    if free < 1:
        return Finding(False, "media folder", f"{root} has only {free:.1f} GB free")
    return Finding(True, "media folder", f"{root} is writable, {free:.0f} GB free")


def check_opencl(config: StationConfig) -> Finding:
    if config.pipeline.backend == "onnxruntime":
        return Finding(True, "OpenCL", "not used (backend onnxruntime)")
    try:
        import pyopencl as cl

        devices = [d.name.strip() for p in cl.get_platforms() for d in p.get_devices()]
    except Exception as exc:  # no ICD loader, no platform, a driver that fails: all mean no device
        devices, error = [], " ".join(str(exc).split())[:160]
    else:
        error = "no OpenCL device found"
    if devices:
        return Finding(True, "OpenCL", "devices: " + ", ".join(devices))
    fallback = " (backend auto falls back to the CPU)" if config.pipeline.backend == "auto" else ""
    return Finding(
        config.pipeline.backend == "auto", "OpenCL", f"{error}: install the GPU's OpenCL driver{fallback}"
    )


def check_time_sync(_config: StationConfig) -> Finding:
    """The kernel's own answer (adjtimex, what `timedatectl` reads too), so it also works without systemd."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    timex = ctypes.create_string_buffer(512)  # struct timex, modes = 0: only read the clock's state
    state = libc.adjtimex(timex)
    if state < 0:
        return Finding(False, "time sync", f"cannot read the clock's state (errno {ctypes.get_errno()})")
    if state == TIME_ERROR:
        return Finding(
            False,
            "time sync",
            "the clock is not synchronised: enable NTP (timedatectl set-ntp true, or chrony); capture "
            "times, alerts and the workers' leases depend on it",
        )
    return Finding(True, "time sync", "the clock is synchronised")


CHECKS: list[Callable[[StationConfig], Finding]] = [
    check_models,
    check_broker,
    check_database,
    check_media,
    check_opencl,
    check_time_sync,
]


def _run(check: Callable[[StationConfig], Finding], config: StationConfig) -> Finding:
    try:
        return check(config)
    except Exception as exc:  # a check that breaks says so, and the others still run
        what = check.__name__.removeprefix("check_").replace("_", " ")
        return Finding(False, what, f"could not be checked: {' '.join(str(exc).split())[:200]}")


def cmd_doctor(args: argparse.Namespace, config: StationConfig) -> int:
    logging.disable(logging.INFO)  # the findings are the output; libraries' progress lines are noise here
    findings = [_run(check, config) for check in CHECKS]
    for finding in findings:
        print(f"{'OK  ' if finding.ok else 'FIX '} {finding.what:13} {finding.detail}")
    missing = [f.what for f in findings if not f.ok]
    print("Everything is in place." if not missing else f"To fix: {', '.join(missing)}.")
    return 1 if missing else 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser(
        "doctor", help="say what the station is missing: models, broker, database, media, OpenCL, time"
    ).set_defaults(func=cmd_doctor)
