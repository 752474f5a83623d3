"""The device preprocessing kernel (letterbox / resize, BGR->RGB, normalisation, layout) against
OpenCV on a real image. Tolerance: both interpolate bilinearly with aligned pixel centres, but
OpenCV's INTER_LINEAR on uint8 uses 11-bit fixed-point weights and rounds its result to uint8,
while the kernel keeps fp32: they differ by at most ~1 grey level (we allow 1.01)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.integration.opencl_helpers import require_opencl


@pytest.fixture(scope="module")
def prep(tmp_path_factory: pytest.TempPathFactory):
    require_opencl()
    from yaguar.engine.backends.opencl.preprocess import Preprocessor
    from yaguar.engine.backends.opencl.runtime import open_runtime

    return Preprocessor(open_runtime(None, tmp_path_factory.mktemp("opencl-prep")))


def test_letterbox_like_yolox(prep, images: Path) -> None:
    from yaguar.engine.backends.opencl.preprocess import PreprocessSpec

    img = cv2.imread(str(images / "classic" / "dog.jpg"))
    got, scale = prep(img, PreprocessSpec(size=(416, 416)))
    r = min(416 / img.shape[0], 416 / img.shape[1])
    small = cv2.resize(img, (int(img.shape[1] * r), int(img.shape[0] * r)), interpolation=cv2.INTER_LINEAR)
    ref = np.full((416, 416, 3), 114, np.float32)
    ref[: small.shape[0], : small.shape[1]] = small
    assert scale == pytest.approx(r)
    assert got.shape == (1, 3, 416, 416)
    assert np.abs(got[0].transpose(1, 2, 0) - ref).max() <= 1.01
    assert (got[0, :, -1, :] == 114).all()  # the pad band below the image


def test_resize_rgb_normalised_nhwc(prep, images: Path) -> None:
    from yaguar.engine.backends.opencl.preprocess import PreprocessSpec

    img = cv2.imread(str(images / "misc" / "parrot.jpg"))
    spec = PreprocessSpec(
        size=(97, 131), letterbox=False, swap_rb=True, mul=(1 / 255,) * 3, add=(-0.5,) * 3, nchw=False
    )
    got, _ = prep(img, spec)
    ref = (
        cv2.resize(img, (131, 97), interpolation=cv2.INTER_LINEAR)[:, :, ::-1].astype(np.float32) / 255 - 0.5
    )
    assert got.shape == (1, 97, 131, 3)
    assert np.abs(got[0] - ref).max() <= 1.01 / 255


def test_rejects_a_non_image(prep) -> None:
    from yaguar.engine.backends.base import BackendError
    from yaguar.engine.backends.opencl.preprocess import PreprocessSpec

    with pytest.raises(BackendError, match="uint8 HxWx3"):
        prep(np.zeros((4, 4), np.float32), PreprocessSpec(size=(8, 8)))
