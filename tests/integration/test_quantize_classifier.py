"""`yaguar models quantize` on a species classifier: one trained here on the shared photos (a short
training run) gets an int8 head, scored against the float model on held-out photos and shipped with
its manifest and card; a float MobileNetV2 goes int8 throughout, and is refused at the default
tolerance; a folder with nothing usable, a model that is no classifier and a model that is int8
already are refused with their reasons, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from tests.support.float_mobilenet import float_mobilenet
from tests.support.jpegs import truncated
from tests.support.training import shared_species_folder, train_on_shared
from yaguar.engine.classifier import Classifier
from yaguar.engine.cli import main
from yaguar.engine.manifest import Manifest, file_sha256, load_manifest
from yaguar.engine.quantize import QuantizeError
from yaguar.engine.quantize_classifier import Agreement, accept
from yaguar.engine.training.trainer import TrainResult


@pytest.fixture(scope="module")
def trained(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train_on_shared(shared_data, tmp_path_factory.mktemp("train"))


@pytest.fixture(scope="module")
def species(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """jaguar and grey heron folders (the classifier's species) and other camera-trap species."""
    return shared_species_folder(shared_data, tmp_path_factory.mktemp("photos") / "species")


@pytest.fixture(scope="module")
def float_classifier(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return float_mobilenet(models_dir, tmp_path_factory.mktemp("float"))


def quantize(models_dir: Path, name: str, calibration: Path, out: Path, *extra: str) -> int:
    return main(
        ["models", "--model-dir", str(models_dir), "quantize", name, "--calibration", str(calibration),
         "--out", str(out), *extra]
    )  # fmt: skip


def test_trained_classifier_in_int8_names_the_same_species_and_ships_manifest_and_card(
    trained: TrainResult,
    species: Path,
    models_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    float_file = trained.manifest.model_path(Path("/nonexistent"))
    loaded: list[str] = []
    load = onnx.load

    def noted_load(f: str, *args: object, **kwargs: object) -> onnx.ModelProto:
        loaded.append(str(f))
        return load(f, *args, **kwargs)

    monkeypatch.setattr(onnx, "load", noted_load)
    code = quantize(
        models_dir, str(float_file.with_suffix(".toml")), species, tmp_path, "--crop-with", "yolox_nano"
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert loaded.count(str(float_file)) == 1, "the float model is loaded once, then checked and quantised"
    assert "especies_prueba_int8@1-int8: top-1 agreement" in printed
    manifest = load_manifest(tmp_path / "especies_prueba_int8.toml")
    assert manifest.sha256 == file_sha256(tmp_path / "especies_prueba_int8.onnx")
    assert manifest.training is not None and manifest.training.card == "especies_prueba_int8.card.md"
    assert [t.es for t in manifest.training.taxa] == ["garza real", "jaguar"]
    # the head is int8 now: its weights are stored as int8 and dequantised in the graph
    model = onnx.load(str(tmp_path / "especies_prueba_int8.onnx"))
    producer = {o: n for n in model.graph.node for o in n.output}
    head = next(n for n in model.graph.node if n.op_type == "Gemm")
    weights = producer[head.input[1]]
    stored = {i.name: i for i in model.graph.initializer}
    assert (
        weights.op_type == "DequantizeLinear" and stored[weights.input[0]].data_type == onnx.TensorProto.INT8
    )
    assert producer[head.input[0]].op_type == "DequantizeLinear"  # and so is its input
    # the card's numbers: held-out photos, the jaguar and heron ones scored for accuracy too
    card = (tmp_path / "especies_prueba_int8.card.md").read_text()
    assert "the best animal box of each found by yolox_nano" in card  # as training cropped them
    row = next(line for line in card.splitlines() if line.startswith("| int8"))
    cells = [c.strip() for c in row.split("|")[2:6]]
    agreed, images = map(int, cells[0].split()[0].split("/"))
    correct, labelled = map(int, cells[2].split()[0].split("/"))
    assert images >= 12 and agreed >= images - 1 and labelled >= 8 and correct >= labelled - 1, row
    # the int8 model is an ordinary classifier from its own folder, naming what the float one names
    photos = [cv2.imread(str(p)) for p in sorted((species / "jaguar").iterdir())]
    int8_top = [g[0].species for g in Classifier(manifest, tmp_path).classify(photos, top_k=1)]
    float_top = [g[0].species for g in Classifier(trained.manifest, models_dir).classify(photos, top_k=1)]
    assert int8_top == float_top and int8_top.count("Panthera onca") >= len(photos) - 1


def _int8_convs(path: Path) -> int:
    """Convs whose weights are stored as int8 and dequantised in the graph."""
    model = onnx.load(str(path))
    int8 = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    dequantised = {
        o
        for n in model.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in int8
        for o in n.output
    }
    return sum(1 for n in model.graph.node if n.op_type == "Conv" and n.input[1] in dequantised)


def test_a_float_classifier_goes_int8_throughout_and_close_calls_are_refused_at_the_default_tolerance(
    float_classifier: Manifest,
    shared_data: Path,
    models_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ImageNet's classes on camera-trap photos are close calls: int8 rounding changes the first class
    of some, though it stays among the first five. Refused at 0.02 with the numbers; kept at 0.5."""
    toml = str(float_classifier.model_path(Path("/nonexistent")).with_suffix(".toml"))
    images = shared_data / "images"
    few = ("--max-frames", "8")  # 8 photos calibrate, 8 are held out: enough to see it, and quick
    assert quantize(models_dir, toml, images, tmp_path / "strict", *few) == 1
    printed = capsys.readouterr().out
    assert "mobilenet_v2_float@1.0: int8 refused, top-1 agreement" in printed, printed
    assert "disagreement" in printed and "> 0.02" in printed and "held-out photos" in printed
    assert not (tmp_path / "strict").exists()
    assert quantize(models_dir, toml, images, tmp_path, *few, "--tolerance", "0.5") == 0
    capsys.readouterr()
    assert _int8_convs(tmp_path / "mobilenet_v2_float_int8.onnx") >= 45  # of 53 (48 here); a few stay float
    card = (tmp_path / "mobilenet_v2_float_int8.card.md").read_text()
    row = next(line for line in card.splitlines() if line.startswith("| int8"))
    (agreed, images_), (top5, _) = (map(int, c.split()[0].split("/")) for c in row.split("|")[2:4])
    assert images_ == 8 and agreed >= images_ // 2 and top5 >= images_ - 1, row
    # the copy is an ordinary classifier from its own folder: a clear photo gets the same answer
    int8 = Classifier(load_manifest(tmp_path / "mobilenet_v2_float_int8.toml"), tmp_path)
    parrot = cv2.imread(str(shared_data / "images" / "misc" / "parrot.jpg"))
    assert int8.classify([parrot], top_k=1)[0][0].label == "macaw"


def test_a_calibration_folder_with_no_usable_image_is_refused(
    trained: TrainResult,
    shared_data: Path,
    models_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "calibration" / "jaguar"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("not a photo")
    jpeg = (shared_data / "images" / "classic" / "dog.jpg").read_bytes()
    (folder / "broken.jpg").write_bytes(truncated(jpeg, 0.02))
    (folder / "empty.jpg").write_bytes(b"")
    toml = trained.manifest.model_path(Path("/nonexistent")).with_suffix(".toml")
    code = quantize(models_dir, str(toml), folder.parent, tmp_path / "out")
    printed = capsys.readouterr().out
    assert code == 1
    assert "has no usable image" in printed and "1 not a JPEG" in printed, printed
    assert not (tmp_path / "out").exists()
    # one photo cannot both calibrate and score the copy
    cv2.imwrite(str(folder / "one.jpg"), np.full((240, 320, 3), 90, np.uint8))
    assert quantize(models_dir, str(toml), folder.parent, tmp_path / "out") == 1
    assert "has only 1 usable image" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_a_model_that_is_no_classifier_or_detector_is_refused(
    shared_data: Path, models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest of another kind, and a 'classifier' whose model is YOLOX-nano (boxes, not scores)."""
    source = Path(__file__).resolve().parents[2] / "engine" / "manifests"
    text = (source / "yolox_nano.toml").read_text()
    (tmp_path / "segmenter.toml").write_text(text.replace('kind = "detector"', 'kind = "segmenter"'))
    boxes = text.replace('name = "yolox_nano"', 'name = "boxes"').replace(
        'kind = "detector"', 'kind = "classifier"'
    )
    (tmp_path / "boxes.toml").write_text(boxes.replace('format = "yolox"', 'format = "probabilities"'))
    photos = shared_data / "images" / "jaguar"
    assert quantize(models_dir, str(tmp_path / "segmenter.toml"), photos, tmp_path / "out") == 1
    assert "kind: Input should be 'detector' or 'classifier'" in capsys.readouterr().out
    assert quantize(models_dir, str(tmp_path / "boxes.toml"), photos, tmp_path / "out") == 1
    printed = capsys.readouterr().out
    assert "yolox_nano.onnx is not a classifier: its output is 1x3549x85" in printed, printed
    assert quantize(models_dir, "fastestdet", photos, tmp_path / "out", "--crop-with", "yolox_nano") == 1
    assert "--crop-with is for classifiers; fastestdet@1.0 is a detector" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_a_classifier_that_is_int8_already_is_refused(
    shared_data: Path, models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = shared_data / "images" / "jaguar"
    assert quantize(models_dir, "mobilenet_v2_imagenet_quant", photos, tmp_path / "out") == 1
    printed = capsys.readouterr().out
    assert "is already int8: its 53 Conv/Gemm/MatMul layers read int8 weights" in printed, printed
    assert not (tmp_path / "out").exists()


def test_a_copy_that_names_other_species_is_refused_with_the_numbers(trained: TrainResult) -> None:
    """The refusal's rule, both of its tests: top-1 agreement, and accuracy on photos of known species
    (the float MobileNetV2 above is refused for its agreement on real photos)."""
    kept = Agreement(images=20, k=2, top1=20, topk=20, labelled=10, float_correct=9, int8_correct=9)
    accept(trained.manifest, kept, 0.02)
    for top1, int8_correct, worst in ((18, 9, "disagreement 0.100"), (20, 8, "accuracy drop 0.100")):
        scored = Agreement(20, 2, top1, 20, 10, 9, int8_correct)
        with pytest.raises(QuantizeError, match="int8 refused, top-1 agreement") as err:
            accept(trained.manifest, scored, 0.05)
        assert f"{worst} > 0.05" in str(err.value) and "accuracy" in str(err.value)
