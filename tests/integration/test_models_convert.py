"""``yaguar models fetch`` for a model published only as TFLite: Coral's originals served from a local
HTTP server, converted with tf2onnx, checked before and after; a wrong file and a dropped link leave
nothing in the model folder."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from tests.support.engine import read_bgr
from tests.support.file_server import serving
from yaguar.engine.classifier import Classifier
from yaguar.engine.cli import main
from yaguar.engine.manifest import MANIFEST_DIR, conversion_record, load_manifest

NAME = "mobilenet_v2_imagenet_quant"
TFLITE = "mobilenet_v2_1.0_224_quant.tflite"


def _upstream(models_dir: Path, tflite: str = TFLITE) -> dict[str, Path]:
    """The upstream folder's names, mapped onto the shared copies."""
    return {
        TFLITE: models_dir / "tflite" / tflite,
        "imagenet_labels.txt": models_dir / "imagenet_labels_1001.txt",
    }


def _fetch(model_dir: Path, cache: Path, mirror: str) -> list[str]:
    return [
        "models", "--model-dir", str(model_dir), "fetch", NAME,
        "--mirror", mirror, "--cache-dir", str(cache), "--no-progress",
    ]  # fmt: skip


def test_fetch_converts_after_a_dropped_link_and_runs_like_the_reference(
    models_dir: Path, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if importlib.util.find_spec("tf2onnx") is None:  # never imported here: TensorFlow would crash PoCL
        pytest.skip("the convert extra is not installed (pip install 'yaguar[convert]')")
    model_dir, cache = tmp_path / "models", tmp_path / "cache"
    size = (models_dir / "tflite" / TFLITE).stat().st_size
    with serving(_upstream(models_dir), cut_first={TFLITE: size // 3}) as server:
        assert main(_fetch(model_dir, cache, server.url)) == 1
        assert "run fetch again" in capsys.readouterr().out
        assert not model_dir.exists() or list(model_dir.iterdir()) == []  # nothing half-written there
        assert main(_fetch(model_dir, cache, server.url)) == 0
        assert (TFLITE, f"bytes={size // 3}-") in server.requests  # resumed, not started again
    assert "sha256 checked before and after" in capsys.readouterr().out
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "imagenet_labels_1001.txt",
        "mobilenet_v2_1.0_224_quant.onnx",
        "mobilenet_v2_1.0_224_quant.onnx.converted.json",
    ]
    assert main(["models", "--model-dir", str(model_dir), "verify", NAME]) == 0
    assert main(["models", "--model-dir", str(model_dir), "list"]) == 0
    assert re.search(rf"{NAME}@1\.0\s+classifier\s+present\s+tflite", capsys.readouterr().out)

    manifest = load_manifest(MANIFEST_DIR / f"{NAME}.toml")
    converted = Classifier(manifest, model_dir)  # the checksum rule accepts the recorded conversion
    reference = Classifier(manifest, models_dir)
    crops = [read_bgr(images / "classic" / n) for n in ("dog.jpg", "eagle.jpg", "giraffe.jpg")]
    assert [g[0].label for g in converted.classify(crops)] == [g[0].label for g in reference.classify(crops)]

    # changed after install: refused like any wrong file
    target = model_dir / manifest.file
    target.write_bytes(target.read_bytes()[:-1] + b"\0")
    assert main(["models", "--model-dir", str(model_dir), "verify", NAME]) == 1
    assert conversion_record(target).is_file()
    # tf2onnx ran in its own process: TensorFlow in this one would crash OpenCL (PoCL) later
    assert "tensorflow" not in sys.modules


def test_a_tflite_that_is_not_the_model_installs_nothing(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir, cache = tmp_path / "models", tmp_path / "cache"
    wrong = _upstream(models_dir, "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite")
    with serving(wrong) as server:
        assert main(_fetch(model_dir, cache, server.url)) == 1
    out = capsys.readouterr().out
    assert "this is not the expected TFLite model" in out and "nothing was installed" in out
    assert not model_dir.exists() or list(model_dir.iterdir()) == []
    assert [p.name for p in cache.iterdir() if p.name.endswith(".part")] == []


def test_labels_with_the_wrong_checksum_are_refused(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _upstream(models_dir)
    files["imagenet_labels.txt"] = models_dir / "inat_bird_labels.txt"
    with serving(files) as server:
        assert main(_fetch(tmp_path / "models", tmp_path / "cache", server.url)) == 1
    assert "not the expected labels file" in capsys.readouterr().out
    assert not (tmp_path / "models").exists()


def test_list_does_not_call_a_model_without_labels_present(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mobilenet_v2_1.0_224_quant.onnx").symlink_to(models_dir / "mobilenet_v2_1.0_224_quant.onnx")
    assert main(["models", "--model-dir", str(tmp_path), "list"]) == 0
    assert re.search(rf"{NAME}@1\.0\s+classifier\s+no labels", capsys.readouterr().out)
