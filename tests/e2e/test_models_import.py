"""``yaguar models import FILE.pt`` end to end on a real YOLOv5s with random weights: checkpoint -> ONNX
and manifest -> ``yaguar detect`` -> MegaDetector JSON with animal/person/vehicle, the same boxes on
onnxruntime and on OpenCL (PoCL); and each bad checkpoint refused in one line, leaving nothing behind."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.opencl_helpers import require_opencl
from tests.support.detect import detect_command
from yaguar.engine.cli import main

# Random weights score low; at this threshold the seed-0 YOLOv5s gives boxes on these pictures.
THRESHOLD = "0.05"
PICTURES = [
    "jaguar/AABP_7_20050913_1220.jpg",
    "jaguar/AREAS_17_20051011_0438.jpg",
    "jaguar/AREAS_21_20050915_2039.jpg",
    "jaguar/AABP_13_20051007_1205.jpg",
]


@pytest.fixture(scope="module", autouse=True)
def _pillow_open_restored() -> Iterator[None]:
    """ultralytics, imported in this process by these tests, replaces PIL.Image.open for the whole
    process (with a HEIC fallback that imports pi_heif); the tests after these must get Pillow's own."""
    from PIL import Image

    original = Image.open
    yield
    Image.open = original


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model folder after importing a random YOLOv5s checkpoint with MegaDetector's classes."""
    from tests.support.yolov5_checkpoint import save_random_yolov5s

    work = tmp_path_factory.mktemp("import")
    checkpoint = save_random_yolov5s(work / "md_random.pt")
    model_dir = work / "models"
    assert main(["models", "--model-dir", str(model_dir), "import", str(checkpoint)]) == 0
    return model_dir


def test_import_writes_a_verified_model_and_manifest(imported: Path, capsys: pytest.CaptureFixture) -> None:
    assert sorted(p.name for p in imported.iterdir()) == ["md_random.onnx", "md_random.toml"]
    manifest = (imported / "md_random.toml").read_text()
    assert 'names = ["animal", "person", "vehicle"]' in manifest
    assert 'table = "megadetector"' in manifest
    assert "width = 320" in manifest  # the size the checkpoint says it was trained at
    assert main(["models", "--model-dir", str(imported), "verify", "md_random"]) == 0
    assert "md_random@" in capsys.readouterr().out
    (imported / "md_random.onnx").open("ab").write(b"\0")
    try:
        assert main(["models", "--model-dir", str(imported), "verify", "md_random"]) == 1
        assert "MISMATCH" in capsys.readouterr().out
    finally:
        with (imported / "md_random.onnx").open("r+b") as handle:
            handle.truncate(handle.seek(0, 2) - 1)


def _detect(folder: Path, model_dir: Path, out: Path, backend: str) -> dict[str, list[tuple]]:
    done = subprocess.run(
        [*detect_command(folder, out, model_dir, "--detector", "md_random", "--no-classify"),
         "--backend", backend, "--threshold", THRESHOLD, "--closer", "0x0"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-1000:] + done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    return {
        image["file"]: sorted((d["category"], d["conf"], *d["bbox"]) for d in image["detections"] or [])
        for image in data["images"]
    }


def test_detect_runs_the_imported_model_with_the_same_boxes_on_opencl(
    imported: Path, images: Path, tmp_path: Path
) -> None:
    require_opencl()
    folder = tmp_path / "pictures"
    folder.mkdir()
    for name in PICTURES:
        (folder / Path(name).name).symlink_to(images / name)
    reference = _detect(folder, imported, tmp_path / "ort.json", "onnxruntime")
    opencl = _detect(folder, imported, tmp_path / "ocl.json", "opencl")
    assert opencl.keys() == reference.keys()
    margin = float(THRESHOLD) + 0.005  # a box within rounding of the threshold may fall either side
    assert sum(b[1] >= margin for boxes in reference.values() for b in boxes) >= 3, reference
    for name, boxes in reference.items():
        ours = [b for b in opencl[name] if b[1] >= margin]
        theirs = [b for b in boxes if b[1] >= margin]
        assert [b[0] for b in ours] == [b[0] for b in theirs], name
        for a, b in zip(ours, theirs, strict=True):
            assert abs(a[1] - b[1]) <= 0.011, (name, a, b)
            assert all(abs(x - y) <= 0.01 for x, y in zip(a[2:], b[2:], strict=True)), (name, a, b)


def test_the_imported_graph_runs_at_another_size_as_pytorch_runs_the_model(imported: Path) -> None:
    """The closer look and the frame-fitted input rewrite the exported graph (engine/graph_resize.py):
    YOLOv5's head holds its cell and anchor grids as constants traced at the trained size. At 640x480
    the rewritten graph must give what the checkpoint's own PyTorch model gives at 640x480."""
    import numpy as np

    from yaguar.engine.backends import create_backend
    from yaguar.engine.graph_resize import resized_model
    from yaguar.engine.pt_import import _load_yolo, _yolov5_modules

    torch, yolo = _yolov5_modules()
    _, model = _load_yolo(imported.parent / "md_random.pt", torch, yolo)
    for module in model.modules():
        if isinstance(module, yolo.yolo.Detect):
            module.inplace, module.dynamic, module.export = False, False, True
    pixels = np.random.default_rng(0).random((1, 3, 480, 640), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(pixels))[0].numpy()
    backend = create_backend(
        "onnxruntime", resized_model(imported / "md_random.onnx", 640, 480), {"threads": 1}
    )
    got = backend.run({backend.inputs[0].name: pixels})[0]
    assert got.shape == expected.shape == (1, 3 * (80 * 60 + 40 * 30 + 20 * 15), 8)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-3)


def _import_fails(checkpoint: Path, model_dir: Path, capsys: pytest.CaptureFixture) -> str:
    model_dir.mkdir(exist_ok=True)
    before = sorted(model_dir.iterdir())
    assert main(["models", "--model-dir", str(model_dir), "import", str(checkpoint)]) == 2
    assert sorted(model_dir.iterdir()) == before  # nothing half-written, no temporary folder left
    out = capsys.readouterr().out.strip()
    assert "\n" not in out and "Traceback" not in out
    return out


def test_a_file_that_is_not_a_torch_checkpoint_is_refused(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture
) -> None:
    fake = tmp_path / "md_v5a.0.0.pt"
    fake.write_bytes((images / "classic" / "dog.jpg").read_bytes())
    out = _import_fails(fake, tmp_path / "models", capsys)
    assert "md_v5a.0.0.pt is not a PyTorch checkpoint" in out


def test_a_torch_file_that_is_not_a_yolo_checkpoint_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import torch

    tensor = tmp_path / "weights.pt"
    torch.save(torch.zeros(3, 3), tensor)
    assert "weights.pt is not a YOLO checkpoint: it holds a Tensor" in _import_fails(
        tensor, tmp_path / "models", capsys
    )
    state = tmp_path / "state.pt"
    torch.save({"model": {"conv.weight": torch.zeros(1)}}, state)
    assert "state.pt is not a YOLO checkpoint" in _import_fails(state, tmp_path / "models", capsys)


def test_a_truncated_checkpoint_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import torch

    whole = tmp_path / "whole.pt"
    torch.save({"model": torch.zeros(1000)}, whole)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole.read_bytes()[:300])
    assert "cut.pt cannot be loaded by torch" in _import_fails(cut, tmp_path / "models", capsys)


def test_verify_says_where_the_publisher_gives_no_checksum(
    models_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["models", "--model-dir", str(models_dir), "verify", "yolox_nano"]) == 0
    assert "the publisher gives no checksum" in capsys.readouterr().out


def test_a_plain_yolov5_keeps_its_own_names_read_as_coco(tmp_path: Path) -> None:
    from yaguar.engine.manifest import load_manifest
    from yaguar.engine.models_import_cli import parse_categories
    from yaguar.engine.pt_import import manifest_toml

    path = tmp_path / "birds.toml"
    labels = ["bird", "dog", "tapir"]
    categories = parse_categories(["tapir=animal"])
    path.write_text(manifest_toml("birds", Path("birds.pt"), ("ab" * 32, "cd" * 32), labels, 640, categories))
    manifest = load_manifest(path)
    assert manifest.labels.names == labels
    assert manifest.labels.table == "coco"
    assert manifest.labels.categories == {"tapir": "animal"}
    assert manifest.input.width == 640
    with pytest.raises(ValueError, match="LABEL=animal"):
        parse_categories(["tapir=mammal"])


def test_an_ultralytics_checkpoint_is_imported_and_detect_runs_it(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture
) -> None:
    import numpy as np
    import onnxruntime as ort

    from tests.support.yolov5_checkpoint import save_random_yolov8n

    checkpoint = save_random_yolov8n(tmp_path / "md_v6_random.pt")
    model_dir = tmp_path / "models"
    assert main(["models", "--model-dir", str(model_dir), "import", str(checkpoint)]) == 0
    assert sorted(p.name for p in model_dir.iterdir()) == ["md_v6_random.onnx", "md_v6_random.toml"]
    manifest = (model_dir / "md_v6_random.toml").read_text()
    assert 'format = "yolov8"' in manifest and 'table = "megadetector"' in manifest
    session = ort.InferenceSession(str(model_dir / "md_v6_random.onnx"))
    (out,) = session.run(None, {"images": np.zeros((1, 3, 320, 320), np.float32)})
    assert out.shape == (1, 4 + 3, 2100)  # boxes + 3 classes over the anchors of strides 8, 16, 32
    result = tmp_path / "v6.json"
    done = subprocess.run(
        [*detect_command(images / "classic", result, model_dir, "--detector", "md_v6_random", "--no-classify"),
         "--closer", "0x0"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-1000:] + done.stderr[-2000:]
    data = json.loads(result.read_text())
    assert data["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    assert len(data["images"]) == len(list((images / "classic").iterdir()))


def test_verify_says_why_a_model_without_checksum_is_not_verified(
    tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    from yaguar.engine.manifest import MANIFEST_DIR

    shipped = (MANIFEST_DIR / "yolox_nano.toml").read_text().splitlines()
    published = [line for line in shipped if not line.startswith(("sha256", "name ="))]
    (tmp_path / "published.toml").write_text("\n".join(['name = "published"', *published]) + "\n")
    made_here = [line for line in published if not line.startswith("url")]
    made_here.insert(0, 'export_command = "yaguar models quantize yolox_nano"')
    (tmp_path / "made_here.toml").write_text("\n".join(['name = "made_here"', *made_here]) + "\n")
    args = ["models", "--model-dir", str(models_dir), "--manifest-dir", str(tmp_path), "verify"]
    assert main([*args, "published", "made_here"]) == 0
    out = capsys.readouterr().out
    assert "published@0.1.1: NOT VERIFIED, yolox_nano.onnx: the publisher gives no checksum for it" in out
    assert "made_here@0.1.1: NOT VERIFIED, yolox_nano.onnx: it is made on this machine" in out
