"""Installing a model published only as TFLite: download it (resumable, into a cache folder, never the
model folder), check its sha256 against the manifest, convert it with tf2onnx into the QDQ ONNX the
engine runs, check the result against the manifest (input tensor, class count = labels), record the
converted file's sha256, and only then put labels, record and model into the model folder, each whole.

A wrong file, a dropped link or a failed conversion leave the model folder as it was: what is half
done lives in the cache folder (a partial download is kept there, to resume).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from yaguar.durable import atomic_write

from .backends import BackendError, create_backend
from .download import FetchError, download
from .manifest import Manifest, ManifestError, check_model, conversion_record, file_sha256

log = logging.getLogger(__name__)

CONVERT_TIMEOUT_S = 900


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "yaguar" / "downloads"


def _url(url: str, mirror: str | None) -> str:
    """The URL itself, or the same file name under a mirror (a local copy of the upstream folder)."""
    if not mirror:
        return url
    return urljoin(mirror.rstrip("/") + "/", Path(urlsplit(url).path).name)


def _fetch_verified(url: str, sha256: str, cache: Path, progress: bool, what: str) -> Path:
    """A downloaded file in the cache whose sha256 is ``sha256``; a wrong one is deleted."""
    cache.mkdir(parents=True, exist_ok=True)
    done = cache / f"{sha256[:16]}-{Path(urlsplit(url).path).name}"
    if done.is_file() and file_sha256(done) == sha256:
        return done
    part = done.with_name(done.name + ".part")
    download(url, part, progress, Path(done.name).name)
    digest = file_sha256(part)
    if digest != sha256:
        part.unlink()
        raise FetchError(
            f"{url}: this is not the expected {what} (sha256 {digest[:12]}..., the manifest says "
            f"{sha256[:12]}...); removed it, nothing was installed"
        )
    part.replace(done)
    return done


def convert_tflite(source: Path, out: Path) -> str:
    """tf2onnx in a child process, returns its version. TensorFlow never loads in this process: it is
    big, and its LLVM crashes PoCL's (a process that imported it segfaults in clGetPlatformIDs)."""
    try:
        version = importlib.metadata.version("tf2onnx")
    except importlib.metadata.PackageNotFoundError:
        raise FetchError(
            "converting TFLite needs tf2onnx and tensorflow: pip install 'yaguar[convert]'"
        ) from None
    command = [sys.executable, "-m", "tf2onnx.convert", "--tflite", str(source), "--output", str(out)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise FetchError(f"tf2onnx took longer than {CONVERT_TIMEOUT_S} s on {source.name}") from None
    if done.returncode != 0 or not out.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"tf2onnx could not convert {source.name}: {last[:200]}")
    return version


def _check(manifest: Manifest, onnx_path: Path, labels: list[str]) -> None:
    """The converted model is the manifest's: its input, and one output per label."""
    try:
        backend = create_backend("onnxruntime", onnx_path)
        check_model(manifest, backend)
    except (ManifestError, BackendError) as exc:
        raise FetchError(f"the converted model is not {manifest.ident}: {exc}") from None
    classes = backend.outputs[0].shape[-1]
    if labels and isinstance(classes, int) and classes - manifest.output.label_offset != len(labels):
        raise FetchError(
            f"the converted model has {classes} outputs, the labels file {len(labels)} lines: not {manifest.ident}"
        )


def install_converted(
    manifest: Manifest, model_dir: Path, cache: Path, mirror: str | None = None, progress: bool = True
) -> Path:
    """Fetch, verify, convert, check and install a manifest's TFLite source; returns the model path."""
    source = manifest.source
    if source is None:
        raise FetchError(f"{manifest.ident} has no published source to convert")
    labels_file: Path | None = None
    if manifest.labels.file:
        if not (source.labels_url and source.labels_sha256):
            raise FetchError(f"{manifest.ident}: the manifest names no labels download to verify")
        labels_file = _fetch_verified(
            _url(source.labels_url, mirror), source.labels_sha256, cache, progress, "labels file"
        )
    tflite = _fetch_verified(_url(source.url, mirror), source.sha256, cache, progress, "TFLite model")
    labels = [] if labels_file is None else [x for x in labels_file.read_text().splitlines() if x.strip()]
    with tempfile.TemporaryDirectory(prefix="yaguar-convert-", dir=cache) as tmp:
        converted = Path(tmp) / manifest.file
        version = convert_tflite(tflite, converted)
        _check(manifest, converted, labels)
        data = converted.read_bytes()
    # Into the model folder only now, each file whole: labels, the record of checksums, the model last,
    # so a crash in between leaves no model that the checksum rule would accept.
    model_dir.mkdir(parents=True, exist_ok=True)
    if labels_file is not None and manifest.labels.file:
        atomic_write(model_dir / manifest.labels.file, labels_file.read_bytes())
    target = model_dir / manifest.file
    record = {
        "source_url": source.url,
        "source_sha256": source.sha256,
        "sha256": hashlib.sha256(data).hexdigest(),
        "converter": f"tf2onnx {version}",
    }
    atomic_write(conversion_record(target), (json.dumps(record, indent=2) + "\n").encode())
    atomic_write(target, data)
    log.info("installed %s: %s converted with tf2onnx %s", manifest.ident, tflite.name, version)
    return target
