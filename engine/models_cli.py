"""``yaguar models list|verify|fetch``: what models the station knows, whether their files are the
right ones (sha256), and fetching a file named by a manifest's URL: resumable (HTTP Range), with a
progress bar, checksum-verified before it replaces anything. Models with no direct download
(MegaDetector, Ultralytics checkpoints) print the export command to run on a connected machine."""

from __future__ import annotations

import argparse
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from yaguar.paths import shared_data_dir

from .manifest import Manifest, ManifestError, all_manifests, file_sha256, find_manifest

log = logging.getLogger(__name__)
CHUNK = 256 * 1024


class FetchError(RuntimeError):
    """A download that did not give the right file; the message says why in one line."""


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list, verify and fetch models")
    parser.add_argument("--model-dir", type=Path, default=None, help="folder with the model files")
    parser.add_argument("--manifest-dir", type=Path, default=None, help="extra manifests")
    sub = parser.add_subparsers(dest="models_command", required=True)
    sub.add_parser("list", help="the known models and whether their files are present")
    verify = sub.add_parser("verify", help="check model files against their manifests' sha256")
    verify.add_argument("names", nargs="*", help="models to check (default: all present)")
    fetch = sub.add_parser("fetch", help="download a model named by its manifest")
    fetch.add_argument("name")
    fetch.add_argument("--url", default=None, help="download from here instead of the manifest's URL")
    fetch.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run_models)


def default_model_dir() -> Path:
    shared = shared_data_dir()
    return shared / "models" if shared else Path.cwd() / "models"


def run_models(args: argparse.Namespace) -> int:
    model_dir = args.model_dir or default_model_dir()
    extra = [args.manifest_dir] if args.manifest_dir else None
    if args.models_command == "list":
        return _list(model_dir, extra)
    if args.models_command == "verify":
        return _verify(model_dir, extra, args.names)
    try:
        manifest = find_manifest(args.name, extra)
    except ManifestError as exc:
        print(f"yaguar models: {exc}")
        return 2
    url = args.url or manifest.url
    if url is None:
        print(
            f"{manifest.ident} has no download; make it on a connected machine with:\n"
            f"  {manifest.export_command}"
        )
        return 2
    try:
        path = fetch_model(manifest, url, model_dir, progress=not args.no_progress)
    except FetchError as exc:
        log.error("%s", exc)
        print(f"yaguar models: {exc}")
        return 1
    print(
        f"{manifest.ident}: {path} is ready (sha256 verified)"
        if manifest.sha256
        else f"{manifest.ident}: {path}"
    )
    return 0


def _list(model_dir: Path, extra: list[Path] | None) -> int:
    print(f"models in {model_dir}:")
    for path, manifest in all_manifests(extra):
        if isinstance(manifest, ManifestError):
            print(f"  {path.stem:32} INVALID  {manifest}")
            continue
        present = "present" if manifest.model_path(model_dir).is_file() else "missing"
        source = "url" if manifest.url else ("export" if manifest.export_command else "-")
        print(f"  {manifest.ident:32} {manifest.kind:10} {present:8} {source:6} {manifest.file}")
    return 0


def _verify(model_dir: Path, extra: list[Path] | None, names: list[str]) -> int:
    bad = 0
    for path, manifest in all_manifests(extra):
        if isinstance(manifest, ManifestError):
            if not names or path.stem in names:
                print(f"{path.stem}: INVALID manifest: {manifest}")
                bad += 1
            continue
        if names and manifest.name not in names:
            continue
        file = manifest.model_path(model_dir)
        if not file.is_file():
            if names:
                print(f"{manifest.ident}: MISSING {file}")
                bad += 1
            continue
        if manifest.sha256 is None:
            print(f"{manifest.ident}: no checksum in the manifest, not verified")
        elif file_sha256(file) == manifest.sha256:
            print(f"{manifest.ident}: OK")
        else:
            print(f"{manifest.ident}: MISMATCH, {file.name} is not the file the manifest names")
            bad += 1
    return 1 if bad else 0


def fetch_model(
    manifest: Manifest, url: str, model_dir: Path, progress: bool = True, timeout: float = 30
) -> Path:
    """Download into ``<file>.part``, resuming what an earlier try left; verify; then move into place."""
    model_dir.mkdir(parents=True, exist_ok=True)
    target = manifest.model_path(model_dir)
    if target.is_file() and manifest.sha256 and file_sha256(target) == manifest.sha256:
        return target
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})  # noqa: S310
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) only, by manifest
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part is already complete
            return _finish(manifest, part, target)
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    with response:
        if have and response.status != 206:
            have = 0  # the server ignored Range: start again
        length = response.headers.get("Content-Length")
        total = have + int(length) if length else None
        with (
            open(part, "ab" if have else "wb") as out,
            tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=manifest.file, disable=not progress
            ) as bar,
        ):
            try:
                while block := response.read(CHUNK):
                    out.write(block)
                    bar.update(len(block))
            except (OSError, urllib.error.URLError) as exc:
                raise FetchError(f"{url}: download interrupted ({exc}); run fetch again to resume") from None
            out.flush()
            os.fsync(out.fileno())
    if total is not None and part.stat().st_size < total:
        raise FetchError(
            f"{url}: download interrupted at {part.stat().st_size} of {total} bytes; run fetch again"
        )
    return _finish(manifest, part, target)


def _finish(manifest: Manifest, part: Path, target: Path) -> Path:
    if manifest.sha256 and file_sha256(part) != manifest.sha256:
        part.unlink()
        raise FetchError(f"{manifest.file}: downloaded file does not match the manifest's sha256; removed it")
    part.replace(target)
    return target
