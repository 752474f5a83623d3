"""Bad input to the engine: each a clear one-line error, never a crash or a hang."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.engine import encode, read_bgr
from tests.support.jpegs import truncated, with_dimensions
from yaguar.engine.backends import BackendError
from yaguar.engine.classifier import Classifier
from yaguar.engine.decode import DecodeError, choose_scale, decode_jpeg, read_image
from yaguar.engine.detector import Detector
from yaguar.engine.manifest import MANIFEST_DIR, ManifestError, all_manifests, find_manifest, load_manifest
from yaguar.engine.preprocess import fit, to_tensor
from yaguar.engine.stills import decode_still


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text
    return text


def test_reduced_decode_keeps_the_needed_size(images: Path) -> None:
    data = (images / "jaguar" / "AABP_13_20051007_1205.jpg").read_bytes()
    full = decode_jpeg(data)
    reduced = decode_jpeg(data, min_side=416)
    assert full.scale == 1 and full.pixels.shape[:2] == (full.height, full.width)
    assert reduced.scale == 4 and max(reduced.pixels.shape[:2]) >= 416
    assert reduced.pixels.shape[1] == -(-full.width // 4)
    assert choose_scale(4000, 3000, 416) == 8 and choose_scale(640, 480, 416) == 1


def test_zero_byte_image(images: Path) -> None:
    with pytest.raises(DecodeError) as info:
        read_image(images / "camera-trap" / "error_img.JPG")
    assert info.value.reason == "empty_payload"
    assert "error_img.JPG" in _one_line(info.value) and "empty" in str(info.value)


@pytest.mark.parametrize(("ext", "kind"), [(".png", "PNG"), (".tiff", "TIFF")])
def test_png_or_tiff_disguised_as_jpeg(ext: str, kind: str, images: Path, tmp_path: Path) -> None:
    fake = tmp_path / "IMG_0001.JPG"
    fake.write_bytes(encode(read_bgr(images / "classic" / "dog.jpg"), ext))
    with pytest.raises(DecodeError) as info:
        read_image(fake)
    assert info.value.reason == "not_jpeg" and kind in _one_line(info.value)


def test_tiffs_of_16_and_32_bits(images: Path) -> None:
    """A 16-bit grey TIFF (scientific, thermal) is read as its top 8 bits, not clipped to white; 32-bit
    values are refused in one line; a size refused from the header keeps its own reason."""
    grey = cv2.cvtColor(read_bgr(images / "classic" / "dog.jpg"), cv2.COLOR_BGR2GRAY)
    sixteen = decode_still(encode(grey.astype(np.uint16) * 257, ".tif"), ".tif", None, 50_000_000)
    assert np.array_equal(sixteen.pixels[:, :, 0], grey)
    with pytest.raises(DecodeError) as info:
        decode_still(encode(grey.astype(np.float32), ".tiff"), ".TIFF", None, 50_000_000)
    assert info.value.reason == "unsupported_image" and "32-bit" in _one_line(info.value)
    with pytest.raises(DecodeError) as info:
        decode_still(encode(grey, ".png"), ".png", None, 1000)
    assert info.value.reason == "too_large" and "too large" in _one_line(info.value)


def test_decompression_bomb_is_refused_from_its_header(images: Path) -> None:
    bomb = with_dimensions((images / "classic" / "dog.jpg").read_bytes(), 60000, 60000)
    with pytest.raises(DecodeError) as info:
        decode_jpeg(bomb)
    assert info.value.reason == "image_too_large" and "60000x60000" in _one_line(info.value)


def test_truncated_and_corrupt_jpegs(images: Path) -> None:
    data = (images / "classic" / "eagle.jpg").read_bytes()
    with pytest.raises(DecodeError) as info:
        decode_jpeg(truncated(data))
    assert info.value.reason == "truncated_jpeg"
    _one_line(info.value)
    # a valid header and end marker around garbage: only the decoder can tell
    garbage = data[:700] + bytes(range(256)) * 40 + b"\xff\xd9"
    try:
        decoded = decode_jpeg(garbage)
    except DecodeError as exc:
        _one_line(exc)
    else:  # libjpeg may decode garbage as grey blocks; then it is at least a whole image
        assert decoded.pixels.shape[:2] == (decoded.height, decoded.width)


def test_shipped_manifests_all_validate() -> None:
    found = {p.stem: m for p, m in all_manifests()}
    assert {
        "yolox_nano",
        "fastestdet",
        "mobilenet_v2_imagenet_quant",
        "mobilenet_v2_inat_bird_quant",
        "megadetector_v5a",
        "yolov8n",
        "mobilenet_v2_imagenet_float",
    } <= set(found)
    assert not [name for name, m in found.items() if isinstance(m, ManifestError)]
    assert (
        found["megadetector_v5a"].export_command and "export.py" in found["megadetector_v5a"].export_command
    )


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda t: t + "\ncolour_space = 'sRGB'\n", "colour_space"),  # unknown key (extra="forbid")
        (lambda t: t.replace('format = "yolox"', 'format = "quantized"'), "not a detector format"),
        (lambda t: t.replace("width = 416", "width = 0"), "input.width"),
        (lambda t: t.replace('kind = "detector"', 'kind = "segmenter"'), "kind"),
        (lambda t: t.replace("[labels]", "[labels\n"), "not valid TOML"),
    ],
)
def test_a_manifest_that_does_not_validate(change, complaint: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(change((MANIFEST_DIR / "yolox_nano.toml").read_text()))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert complaint in _one_line(info.value) and "broken.toml" in str(info.value)


def test_a_model_file_that_is_not_onnx(models_dir: Path, tmp_path: Path) -> None:
    shutil.copy(models_dir / "coco80.names", tmp_path / "coco80.names")
    (tmp_path / "yolox_nano.onnx").write_bytes(b"this is not a model\n" * 100)
    with pytest.raises(BackendError) as info:
        Detector(find_manifest("yolox_nano"), tmp_path, verify_sha256=False)
    assert "yolox_nano.onnx" in _one_line(info.value)


def test_a_model_file_that_does_not_match_its_checksum(models_dir: Path, tmp_path: Path) -> None:
    shutil.copy(models_dir / "coco80.names", tmp_path / "coco80.names")
    shutil.copy(models_dir / "fastestdet.onnx", tmp_path / "yolox_nano.onnx")
    with pytest.raises(ManifestError) as info:
        Detector(find_manifest("yolox_nano"), tmp_path)
    assert "sha256" in _one_line(info.value)


def test_a_model_that_does_not_match_its_manifest(models_dir: Path, tmp_path: Path) -> None:
    shutil.copy(models_dir / "coco80.names", tmp_path / "coco80.names")
    shutil.copy(models_dir / "fastestdet.onnx", tmp_path / "yolox_nano.onnx")
    with pytest.raises(ManifestError) as info:  # FastestDet's file under YOLOX's name
        Detector(find_manifest("yolox_nano"), tmp_path, verify_sha256=False)
    assert "has no input 'images'" in _one_line(info.value)
    # a manifest that names no input: the size and the dtype are still checked
    unnamed = tmp_path / "unnamed.toml"
    unnamed.write_text((MANIFEST_DIR / "yolox_nano.toml").read_text().replace('name = "images"\n', ""))
    with pytest.raises(ManifestError) as info:  # a 352x352 model under a 416x416 manifest
        Detector(load_manifest(unnamed), tmp_path, verify_sha256=False)
    assert "does not match" in _one_line(info.value)
    shutil.copy(models_dir / "mobilenet_v2_1.0_224_quant.onnx", tmp_path / "yolox_nano.onnx")
    with pytest.raises(ManifestError) as info:  # float NCHW promised, uint8 NHWC found
        Detector(load_manifest(unnamed), tmp_path, verify_sha256=False)
    assert "uint8" in _one_line(info.value)
    with pytest.raises(ManifestError, match="not a classifier"):
        Classifier(find_manifest("yolox_nano"), models_dir)


def test_a_missing_model_file_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        Detector(find_manifest("megadetector_v5a"), tmp_path)
    assert "yaguar models fetch megadetector_v5a" in _one_line(info.value)


def test_float_nchw_normalisation_follows_the_manifest() -> None:
    spec = find_manifest("mobilenet_v2_imagenet_float").input
    image = np.full((10, 20, 3), (0, 128, 255), np.uint8)  # BGR: red is 255
    fitted, placement = fit(image, spec)
    tensor = to_tensor([fitted, fitted], spec)
    assert tensor.shape == (2, 3, 224, 224) and tensor.dtype == np.float32
    assert np.isclose(tensor[0, 0, 5, 5], (1 - 0.485) / 0.229, atol=1e-4)  # R first: the manifest says RGB
    assert np.isclose(tensor[1, 2, 5, 5], (0 - 0.406) / 0.225, atol=1e-4)
    assert (placement.sx, placement.sy) == (224 / 20, 224 / 10)  # stretched
    letterboxed, where = fit(image, find_manifest("yolov8n").input)  # centred letterbox, grey padding
    assert where.dy == 160 and letterboxed[0, 0].tolist() == [114, 114, 114]
