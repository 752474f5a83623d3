"""The four shared models on the OpenCL backend (PoCL here) against onnxruntime on real images:
raw output differences, the same final detections (decode + NMS) and the same top-5 classes.

Tolerances: the float models accumulate hundreds of products per output in a different order than
onnxruntime's GEMMs (fp32, ~1e-7 relative per add), through ~100 layers: we allow 2e-3 of the
output range. The int8 QDQ models are computed in fp32 with the same fake-quant rounding; an
activation on a rounding tie can land one step apart and the step propagates, so the uint8
outputs may differ by a few steps. onnxruntime's own int8 kernels and its unoptimised fp32 QDQ
path differ by up to 9 steps on these images, so we allow 10 (of 255); the top-5 classes must
match (as a set; two classes with near-equal scores may swap places).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.integration.opencl_helpers import decode_fastestdet, decode_yolox, require_opencl, same_detections

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_opencl()
    return tmp_path_factory.mktemp("opencl-cache")


def _ort(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _letterbox(img: np.ndarray, size: int) -> np.ndarray:
    r = min(size / img.shape[0], size / img.shape[1])
    resized = cv2.resize(img, (int(img.shape[1] * r), int(img.shape[0] * r)), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((size, size, 3), 114, np.uint8)
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    return canvas


def _report(name: str, got: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    rel = float(diff.max() / max(np.abs(ref).max(), 1e-12))
    log.warning("parity %s: max abs %.3g, max rel (to range) %.3g", name, diff.max(), rel)
    return float(diff.max()), rel


def test_yolox_nano_same_detections(models_dir: Path, images: Path, cache_dir: Path) -> None:
    from yaguar.engine.backends.opencl import OpenCLBackend

    path = models_dir / "yolox_nano.onnx"
    be = OpenCLBackend(path, {"cache_dir": cache_dir})
    img = cv2.imread(str(images / "classic" / "dog.jpg"))
    x = _letterbox(img, 416).transpose(2, 0, 1)[None].astype(np.float32)
    got = be.run({"images": x})[0]
    ref = _ort(path).run(None, {"images": x})[0]
    _, rel = _report("yolox_nano", got, ref)
    assert got.shape == ref.shape == (1, 3549, 85)
    assert rel < 2e-3
    dets, ref_dets = decode_yolox(got[0], 416), decode_yolox(ref[0], 416)
    assert {c for c, _, _ in ref_dets} >= {1, 16}  # bicycle and dog: the reference itself is sane
    assert same_detections(dets, ref_dets, box_tol=1.0)


@pytest.mark.parametrize("batch_part", [1, 2])
def test_fastestdet_same_detections_batch2(
    models_dir: Path, images: Path, cache_dir: Path, batch_part: int
) -> None:
    """Batch 2 re-plans the batch-1 export (its channel shuffle bakes the batch into Reshape); with
    batch_part 1 a CPU device runs it as two parts of one image (split.py), with 2 as one batch."""
    from yaguar.engine.backends.opencl import OpenCLBackend

    path = models_dir / "fastestdet.onnx"
    be = OpenCLBackend(path, {"cache_dir": cache_dir, "batch_part": batch_part})
    frames = [
        cv2.resize(cv2.imread(str(images / "classic" / name)), (352, 352))
        for name in ("dog.jpg", "horses.jpg")
    ]
    x = np.stack([f.transpose(2, 0, 1) for f in frames]).astype(np.float32) / 255.0
    got = be.run({"input.1": x})[0]
    sess = _ort(path)
    ref = np.concatenate([sess.run(None, {"input.1": x[i : i + 1]})[0] for i in range(2)])
    _, rel = _report("fastestdet", got, ref)
    assert got.shape == (2, 85, 22, 22) and rel < 2e-3
    for i in range(2):
        dets, ref_dets = decode_fastestdet(got[i]), decode_fastestdet(ref[i])
        assert ref_dets, "the reference finds something on both images"
        assert same_detections(dets, ref_dets, box_tol=2e-3)


@pytest.mark.parametrize(
    ("model_name", "image_names"),
    [
        ("mobilenet_v2_1.0_224_quant.onnx", ["misc/cat_720p.jpg", "classic/dog.jpg"]),
        ("mobilenet_v2_inat_bird_quant.onnx", ["misc/parrot.jpg", "misc/owl.jpg"]),
    ],
)
def test_qdq_mobilenet_same_top5(
    models_dir: Path, images: Path, cache_dir: Path, model_name: str, image_names: list[str]
) -> None:
    from yaguar.engine.backends.opencl import OpenCLBackend

    path = models_dir / model_name
    be = OpenCLBackend(path, {"cache_dir": cache_dir})
    name = be.inputs[0].name
    x = np.stack([cv2.resize(cv2.imread(str(images / n))[:, :, ::-1], (224, 224)) for n in image_names])
    got = be.run({name: x})[0]
    sess = _ort(path)
    ref = np.concatenate([sess.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])
    assert got.dtype == ref.dtype == np.uint8
    abs_diff, _ = _report(model_name, got, ref)
    assert abs_diff <= 10
    for g, r in zip(got, ref, strict=True):
        top_g, top_r = (
            np.argsort(-g.astype(int), kind="stable")[:5],
            np.argsort(-r.astype(int), kind="stable")[:5],
        )
        assert r[top_r[0]] > 64, "the reference is confident on a real image"
        assert set(top_g) == set(top_r)
        assert top_g[0] == top_r[0]
