"""The detectors run at a larger input size (engine/graph_resize.py) on our OpenCL kernels (PoCL here)
give the boxes onnxruntime gives on the same rewritten graph."""

from __future__ import annotations

from pathlib import Path

import cv2

from tests.integration.opencl_helpers import require_opencl
from yaguar.engine.detector import Detector
from yaguar.engine.manifest import find_manifest
from yaguar.engine.postprocess import iou_xywh


def test_resized_detector_same_boxes_on_opencl_and_onnxruntime(
    models_dir: Path, images: Path, tmp_path: Path
) -> None:
    """FastestDet: its rewrite touches the Reshape targets of every channel shuffle (YOLOX's only the
    input), so it is the one that tells (one model, one frame: PoCL compiles each new shape)."""
    require_opencl()
    name, size = "fastestdet", (448, 352)
    manifest = find_manifest(name)
    cpu = Detector(manifest, models_dir, "onnxruntime", input_size=size)
    gpu = Detector(manifest, models_dir, "opencl", {"cache_dir": str(tmp_path)}, input_size=size)
    assert (gpu.manifest.input.width, gpu.manifest.input.height) == size
    assert gpu.backend.inputs[0].shape[2:] == (size[1], size[0])
    frames = [cv2.imread(str(images / "classic" / "dog.jpg"))]
    for want, got in zip(cpu.detect(frames), gpu.detect(frames), strict=True):
        assert want, "the reference found nothing to compare"
        assert [d.label for d in got] == [d.label for d in want]
        for a, b in zip(want, got, strict=True):
            assert abs(a.confidence - b.confidence) < 0.01 and iou_xywh(a.bbox, b.bbox) > 0.98
