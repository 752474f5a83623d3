"""``yaguar models``: list, verify, and fetch from a local HTTP server (resumable, checksum-verified)."""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from yaguar.engine.cli import main
from yaguar.engine.manifest import MANIFEST_DIR, Manifest, all_manifests, file_sha256, load_manifest
from yaguar.engine.models_cli import FetchError, fetch_model


class ModelServer:
    """Serves one file on 127.0.0.1 with HTTP Range; can cut the first download short."""

    def __init__(self, body: bytes, cut_first_at: int | None = None) -> None:
        self.body, self.cut_first_at, self.requests = body, cut_first_at, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                server.requests.append(self.headers.get("Range"))
                start = 0
                match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
                if match:
                    start = int(match.group(1))
                    self.send_response(206)
                    self.send_header(
                        "Content-Range", f"bytes {start}-{len(server.body) - 1}/{len(server.body)}"
                    )
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(server.body) - start))
                self.end_headers()
                if server.cut_first_at is not None and len(server.requests) == 1:
                    self.wfile.write(server.body[: server.cut_first_at])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the link drops mid-download
                    return
                self.wfile.write(server.body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/yolox_nano.onnx"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def model_bytes(models_dir: Path) -> bytes:
    return (models_dir / "yolox_nano.onnx").read_bytes()


@pytest.fixture
def server(model_bytes: bytes) -> Iterator[ModelServer]:
    running = ModelServer(model_bytes, cut_first_at=len(model_bytes) // 3)
    yield running
    running.close()


def test_fetch_resumes_after_a_dropped_link_and_verifies(
    server: ModelServer, model_bytes: bytes, tmp_path: Path
) -> None:
    manifest = load_manifest(MANIFEST_DIR / "yolox_nano.toml")
    with pytest.raises(FetchError, match="run fetch again"):
        fetch_model(manifest, server.url, tmp_path, progress=False)
    part = tmp_path / "yolox_nano.onnx.part"
    assert part.stat().st_size == len(model_bytes) // 3
    path = fetch_model(manifest, server.url, tmp_path, progress=False)
    assert server.requests == [None, f"bytes={len(model_bytes) // 3}-"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest.sha256 and not part.exists()


def test_fetch_refuses_a_file_with_the_wrong_checksum(tmp_path: Path, models_dir: Path) -> None:
    wrong = ModelServer((models_dir / "fastestdet.onnx").read_bytes())
    try:
        manifest = load_manifest(MANIFEST_DIR / "yolox_nano.toml")
        with pytest.raises(FetchError, match="does not match the manifest's sha256"):
            fetch_model(manifest, wrong.url, tmp_path, progress=False)
    finally:
        wrong.close()
    assert not (tmp_path / "yolox_nano.onnx").exists() and not (tmp_path / "yolox_nano.onnx.part").exists()


def test_cli_fetch_list_and_verify(
    server: ModelServer, tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = tmp_path / "models"
    assert (
        main(
            [
                "models",
                "--model-dir",
                str(model_dir),
                "fetch",
                "yolox_nano",
                "--url",
                server.url,
                "--no-progress",
            ]
        )
        == 1
    )  # the first try is cut short
    assert "run fetch again" in capsys.readouterr().out
    assert (
        main(
            [
                "models",
                "--model-dir",
                str(model_dir),
                "fetch",
                "yolox_nano",
                "--url",
                server.url,
                "--no-progress",
            ]
        )
        == 0
    )
    assert "sha256 verified" in capsys.readouterr().out

    assert main(["models", "--model-dir", str(model_dir), "list"]) == 0
    # a model whose labels file is not beside it cannot name anything: not "present"
    assert re.search(r"yolox_nano@0\.1\.1\s+detector\s+no labels", capsys.readouterr().out)
    shutil.copy(models_dir / "coco80.names", model_dir / "coco80.names")
    assert main(["models", "--model-dir", str(model_dir), "list"]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"yolox_nano@0\.1\.1\s+detector\s+present", listing)
    assert re.search(r"megadetector_v5a@5\.0a\s+detector\s+missing\s+export", listing)

    assert main(["models", "--model-dir", str(model_dir), "verify", "yolox_nano"]) == 0
    shutil.copy(models_dir / "fastestdet.onnx", model_dir / "yolox_nano.onnx")
    assert main(["models", "--model-dir", str(model_dir), "verify", "yolox_nano"]) == 1
    assert "MISMATCH" in capsys.readouterr().out

    assert main(["models", "--model-dir", str(model_dir), "fetch", "megadetector_v5a"]) == 2
    assert "export.py --weights md_v5a.0.0.pt" in capsys.readouterr().out


def test_invalid_manifest_is_listed_not_fatal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = tmp_path / "manifests"
    extra.mkdir()
    (extra / "broken.toml").write_text('name = "broken"\nkind = "detector"\n')
    assert main(["models", "--model-dir", str(tmp_path), "--manifest-dir", str(extra), "list"]) == 0
    assert re.search(r"broken\s+INVALID\s+manifest broken.toml is invalid", capsys.readouterr().out)
    assert (
        main(["models", "--model-dir", str(tmp_path), "--manifest-dir", str(extra), "verify", "broken"]) == 1
    )


def test_every_coco_labels_file_has_a_verified_download(models_dir: Path) -> None:
    """The manifests naming coco80.names give its upstream URL and the checksum of the copy we test with."""
    ours = file_sha256(models_dir / "coco80.names")
    named = [m for _, m in all_manifests() if isinstance(m, Manifest) and m.labels.file == "coco80.names"]
    assert {m.name for m in named} >= {"yolox_nano", "fastestdet"}
    for manifest in named:
        assert manifest.labels.url and manifest.labels.url.startswith("https://")
        assert manifest.labels.sha256 == ours, manifest.name


def test_fetch_brings_the_labels_file_and_verify_checks_it(
    tmp_path: Path, models_dir: Path, model_bytes: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = (models_dir / "coco80.names").read_bytes()
    model_server, labels_server, wrong_server = (
        ModelServer(model_bytes),
        ModelServer(labels),
        ModelServer(labels.replace(b"motorbike", b"motorcycle")),
    )
    model_dir = tmp_path / "models"
    fetch = ["models", "--model-dir", str(model_dir), "fetch", "yolox_nano", "--no-progress"]
    try:
        # A file of one's own (--url) never takes its labels from upstream: it says so instead.
        assert main([*fetch, "--url", model_server.url]) == 0
        assert "labels coco80.names not fetched: give --labels-url" in capsys.readouterr().out
        assert main([*fetch, "--url", model_server.url, "--labels-url", wrong_server.url]) == 1
        assert "coco80.names: downloaded file does not match" in capsys.readouterr().out
        assert sorted(p.name for p in model_dir.iterdir()) == ["yolox_nano.onnx"]  # nothing half-made
        assert main([*fetch, "--url", model_server.url, "--labels-url", labels_server.url]) == 0
        assert "coco80.names ready (sha256 verified)" in capsys.readouterr().out
    finally:
        for server in (model_server, labels_server, wrong_server):
            server.close()
    assert (model_dir / "coco80.names").read_bytes() == labels
    assert main(["models", "--model-dir", str(model_dir), "verify", "yolox_nano"]) == 0
    assert "yolox_nano@0.1.1: labels OK, sha256 recorded by Yaguar" in capsys.readouterr().out
    (model_dir / "coco80.names").write_text("person\nanimal\n")
    assert main(["models", "--model-dir", str(model_dir), "verify", "yolox_nano"]) == 1
    assert "MISMATCH, labels coco80.names" in capsys.readouterr().out
    (model_dir / "coco80.names").unlink()
    assert main(["models", "--model-dir", str(model_dir), "verify", "yolox_nano"]) == 1
    assert "MISSING labels" in capsys.readouterr().out
