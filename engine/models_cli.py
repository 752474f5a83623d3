"""``yaguar models list|verify|fetch``: what models the station knows, whether their files are the
right ones (sha256), and fetching a file named by a manifest's URL: resumable (HTTP Range), with a
progress bar, checksum-verified before it replaces anything. Models with no direct download
(MegaDetector, Ultralytics checkpoints) print the export command to run on a connected machine."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from yaguar.paths import shared_data_dir

from . import quantize_cli
from .download import FetchError, download
from .manifest import Manifest, ManifestError, all_manifests, checksum_ok, file_sha256, find_manifest
from .models_import_cli import add_import_command, run_import

log = logging.getLogger(__name__)


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
    fetch.add_argument(
        "--labels-url", default=None, help="the labels file from here instead of the manifest's URL"
    )
    fetch.add_argument(
        "--mirror", default=None, help="a local copy of the upstream folder: files by the same names"
    )
    fetch.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="downloads and conversions in progress (not the model folder)",
    )
    fetch.add_argument("--no-progress", action="store_true")
    quantize_cli.add_command(sub)
    add_import_command(sub)
    parser.set_defaults(func=run_models)


def default_model_dir() -> Path:
    shared = shared_data_dir()
    return shared / "models" if shared else Path.cwd() / "models"


def run_models(args: argparse.Namespace) -> int:
    model_dir = args.model_dir or default_model_dir()
    # imported models keep their manifest beside their ONNX file, in the model folder
    extra = [d for d in (args.manifest_dir, model_dir) if d is not None]
    if args.models_command == "import":
        return run_import(args, model_dir)
    if args.models_command == "list":
        return _list(model_dir, extra)
    if args.models_command == "verify":
        return _verify(model_dir, extra, args.names)
    if args.models_command == "quantize":
        return quantize_cli.run(args, model_dir, extra)
    try:
        manifest = find_manifest(args.name, extra)
    except ManifestError as exc:
        print(f"yaguar models: {exc}")
        return 2
    if manifest.source is not None and args.url is None:
        return _install_converted(manifest, model_dir, args)
    url = args.url or manifest.url
    if url is None:
        print(
            f"{manifest.ident} has no download; make it on a connected machine with:\n"
            f"  {manifest.export_command}"
        )
        return 2
    try:
        path = fetch_model(manifest, url, model_dir, progress=not args.no_progress)
        labels = _fetch_labels_for(manifest, model_dir, args)
    except FetchError as exc:
        log.error("%s", exc)
        print(f"yaguar models: {exc}")
        return 1
    print(
        f"{manifest.ident}: {path} is ready (sha256 verified)"
        if manifest.sha256
        else f"{manifest.ident}: {path}"
    )
    if labels:
        print(f"{manifest.ident}: {labels}")
    return 0


def _fetch_labels_for(manifest: Manifest, model_dir: Path, args: argparse.Namespace) -> str:
    """The labels file beside the model: from --labels-url, the mirror, or the manifest. A model fetched
    from a URL of one's own (--url) takes its labels from one's own place too, never from upstream."""
    spec = manifest.labels
    if spec.file is None:
        return ""
    url = args.labels_url or (f"{args.mirror.rstrip('/')}/{spec.file}" if args.mirror else None)
    if url is None and args.url is None:
        url = spec.url
    target = Path(model_dir) / spec.file
    if url is None:
        if target.is_file():
            return f"labels {target} already there"
        return f"labels {spec.file} not fetched: give --labels-url (the manifest names no download)"
    path = fetch_labels(manifest, url, model_dir, progress=not args.no_progress)
    return f"labels {path} ready" + (" (sha256 verified)" if spec.sha256 else "")


def fetch_labels(manifest: Manifest, url: str, model_dir: Path, progress: bool = True) -> Path:
    """The manifest's labels file into the model folder, verified like the model file."""
    spec = manifest.labels
    assert spec.file is not None, "a manifest with inline labels has no labels file"
    return _fetch_verified(url, Path(model_dir) / spec.file, spec.sha256, progress, timeout=30)


def _install_converted(manifest: Manifest, model_dir: Path, args: argparse.Namespace) -> int:
    from .convert import default_cache_dir, install_converted

    try:
        path = install_converted(
            manifest, model_dir, args.cache_dir or default_cache_dir(), args.mirror, not args.no_progress
        )
    except FetchError as exc:
        log.error("%s", exc)
        print(f"yaguar models: {exc}")
        return 1
    print(f"{manifest.ident}: {path} is ready (converted from TFLite; sha256 checked before and after)")
    return 0


def presence(manifest: Manifest, model_dir: Path) -> str:
    """present, missing, or "no labels": a model without its labels file cannot name anything."""
    if not manifest.model_path(model_dir).is_file():
        return "missing"
    if manifest.labels.file and not (Path(model_dir) / manifest.labels.file).is_file():
        return "no labels"
    return "present"


def _list(model_dir: Path, extra: list[Path] | None) -> int:
    print(f"models in {model_dir}:")
    for path, manifest in all_manifests(extra):
        if isinstance(manifest, ManifestError):
            print(f"  {path.stem:32} INVALID  {manifest}")
            continue
        present = presence(manifest, model_dir)
        source = (
            "tflite"
            if manifest.source
            else "url"
            if manifest.url
            else ("export" if manifest.export_command else "-")
        )
        print(f"  {manifest.ident:32} {manifest.kind:10} {present:9} {source:6} {manifest.file}")
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
            why = (
                "the publisher gives no checksum for it"
                if manifest.url
                else "it is made on this machine (export_command), so no checksum can be known ahead"
            )
            print(f"{manifest.ident}: NOT VERIFIED, {file.name}: {why}")
        elif checksum_ok(manifest, file):
            print(f"{manifest.ident}: OK, sha256 {manifest.sha256_from or 'as the manifest gives it'}")
        else:
            print(f"{manifest.ident}: MISMATCH, {file.name} is not the file the manifest names")
            bad += 1
        bad += _verify_labels(manifest, model_dir)
    return 1 if bad else 0


def _verify_labels(manifest: Manifest, model_dir: Path) -> int:
    """Check the labels file beside a present model; 1 when it is missing or not the manifest's."""
    spec = manifest.labels
    if spec.file is None:
        return 0
    path = Path(model_dir) / spec.file
    if not path.is_file():
        print(f"{manifest.ident}: MISSING labels {path} (yaguar models fetch {manifest.name})")
        return 1
    if spec.sha256 is None:
        return 0
    if file_sha256(path) != spec.sha256:
        print(f"{manifest.ident}: MISMATCH, labels {spec.file} are not the file the manifest names")
        return 1
    print(f"{manifest.ident}: labels OK, sha256 {spec.sha256_from or 'as the manifest gives it'}")
    return 0


def fetch_model(
    manifest: Manifest, url: str, model_dir: Path, progress: bool = True, timeout: float = 30
) -> Path:
    model_dir.mkdir(parents=True, exist_ok=True)
    return _fetch_verified(url, manifest.model_path(model_dir), manifest.sha256, progress, timeout)


def _fetch_verified(url: str, target: Path, sha256: str | None, progress: bool, timeout: float) -> Path:
    """Download into ``<file>.part``, resuming what an earlier try left; verify; then move into place.
    A file already there with the right checksum is kept."""
    if target.is_file() and sha256 and file_sha256(target) == sha256:
        return target
    part = target.with_name(target.name + ".part")
    download(url, part, progress, target.name, timeout)
    if sha256 and file_sha256(part) != sha256:
        part.unlink()
        raise FetchError(f"{target.name}: downloaded file does not match the manifest's sha256; removed it")
    part.replace(target)
    return target
