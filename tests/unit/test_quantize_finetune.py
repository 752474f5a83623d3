"""Quantisation-aware fine-tuning (engine/quantize_finetune.py, engine/torch_graph.py) on the shared
YOLOX-nano: torch runs its graph as onnxruntime does; a few steps on two small photos bring the int8
copy's outputs nearer the float model's on those photos; the tuned model goes back into an ONNX file
that ``yaguar models quantize --finetune`` quantises as usual; a training folder with no usable photo
is refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from yaguar.engine.cli import main
from yaguar.engine.manifest import file_sha256, find_manifest, load_manifest
from yaguar.engine.preprocess import fit, to_tensor
from yaguar.engine.quantize import calibration_frames
from yaguar.engine.quantize_finetune import finetune, prepared
from yaguar.engine.quantize_silu import CONV_ONLY
from yaguar.engine.torch_graph import TorchGraph

SMALL = 256  # photos decoded this small keep the test quick


@pytest.fixture(scope="module", autouse=True)
def two_threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture
def two_photos(tmp_path: Path, shared_data: Path) -> Path:
    folder = tmp_path / "training"
    folder.mkdir()
    for name in ("classic/dog.jpg", "misc/cat_720p.jpg"):
        (folder / Path(name).name).symlink_to(shared_data / "images" / name)
    return folder


def test_torch_runs_the_float_graph_as_onnxruntime_does(models_dir: Path, shared_data: Path) -> None:
    manifest = find_manifest("yolox_nano")
    graph = prepared(onnx.load(str(models_dir / "yolox_nano.onnx")))
    frame = calibration_frames([shared_data / "images" / "classic"], 1, SMALL)[0]
    x = to_tensor([fit(frame, manifest.input)[0]], manifest.input)
    runner = TorchGraph(graph)
    with torch.no_grad():
        ours = runner(torch.from_numpy(x)).numpy()
        # other sizes too (the file's input is fixed at 416x416; training feeds the station's sizes)
        other = runner(torch.zeros(2, 3, 256, 320))
    theirs = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"images": x}
    )[0]
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-3
    assert other.shape == (2, 40 * 32 + 20 * 16 + 10 * 8, 85)


def test_a_few_steps_bring_the_int8_copy_nearer_the_float_model(
    models_dir: Path, shared_data: Path, two_photos: Path
) -> None:
    manifest = find_manifest("yolox_nano")
    calibration = calibration_frames([two_photos], 2, SMALL)
    model = onnx.load(str(models_dir / "yolox_nano.onnx"))
    tuned = finetune(model, manifest.input, calibration, [two_photos], 6, CONV_ONLY)
    assert tuned.steps == 6 and sorted(p.name for p in tuned.frames) == ["cat_720p.jpg", "dog.jpg"]
    assert tuned.error_after < tuned.error_before * 0.97, (tuned.error_before, tuned.error_after)
    # only the weights moved, and they moved: same graph, same initializer names
    before = {i.name: onnx.numpy_helper.to_array(i) for i in prepared(model).graph.initializer}
    after = {i.name: onnx.numpy_helper.to_array(i) for i in tuned.model.graph.initializer}
    assert before.keys() == after.keys()
    assert [n.op_type for n in tuned.model.graph.node] == [n.op_type for n in prepared(model).graph.node]
    changed = [n for n in before if not np.array_equal(before[n], after[n])]
    assert len(changed) > 100


def _finetune(models_dir: Path, calibration: Path, training: Path, out: Path, *more: str | Path) -> int:
    """`yaguar models quantize yolox_nano --calibration C --finetune T --out O MORE`: its exit code."""
    given = ["--calibration", calibration, "--finetune", training, "--out", out, *more]
    return main(["models", "--model-dir", str(models_dir), "quantize", "yolox_nano", *map(str, given)])


def test_the_tuned_model_quantises_through_the_cli_with_its_card(
    tmp_path: Path, models_dir: Path, two_photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "models"
    code = _finetune(models_dir, two_photos, two_photos, out, "--finetune-minutes", "0.01", "--max-frames", "2",
                     # scored against the float model's own boxes, which is quicker
                     "--reference", tmp_path / "none.json", "--tolerance", "0.99")  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "Fine-tuning yolox_nano" in printed and "frames found" in printed
    manifest = load_manifest(out / "yolox_nano_int8.toml")
    assert manifest.sha256 == file_sha256(out / "yolox_nano_int8.onnx")
    model = onnx.load(str(out / "yolox_nano_int8.onnx"))
    onnx.checker.check_model(model)
    assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) > 50
    card = (out / "yolox_nano_int8.card.md").read_text()
    assert "## Fine-tuned for int8" in card and "Training saw 2 photos" in card


def test_a_training_folder_with_no_usable_image_is_refused_in_one_line(
    tmp_path: Path, models_dir: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "training"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a photo")
    (folder / "empty.jpg").write_bytes(b"")
    out = tmp_path / "models"
    code = _finetune(models_dir, shared_data / "images" / "classic", folder, out)
    printed = capsys.readouterr().out
    assert code == 1
    last = printed.strip().splitlines()[-1]
    assert (
        last.startswith("yaguar models quantize: --finetune: training folder") and "no usable image" in last
    )
    assert "1 not a JPEG" in last, printed
    assert not out.exists()
