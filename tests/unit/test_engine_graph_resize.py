"""Running the fixed-shape detector exports at other input sizes (engine/graph_resize.py)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx.tools.update_model_dims import update_inputs_outputs_dims

from yaguar.engine.backends import create_backend
from yaguar.engine.detector import Detector
from yaguar.engine.graph_resize import GraphRewriteError, resized_model, rewrite_input_size
from yaguar.engine.manifest import find_manifest
from yaguar.engine.postprocess import decode_fastestdet, decode_yolox, nms


def _run(model: onnx.ModelProto, tensor: np.ndarray) -> np.ndarray:
    backend = create_backend("onnxruntime", model, {"threads": 1})
    return backend.run({backend.inputs[0].name: tensor})[0][0]


def _camera_trap_square(images: Path, side: int) -> np.ndarray:
    """A real frame cut square around the animal, at ``side`` pixels: fits the native input as it is."""
    frame = cv2.imread(str(images / "camera-trap" / "IMAG1065_cougar.JPG"), cv2.IMREAD_REDUCED_COLOR_2)
    height = frame.shape[0]
    return cv2.resize(frame[:, :height], (side, side), interpolation=cv2.INTER_AREA)


def _pixel_boxes(boxes) -> list[tuple[int, np.ndarray]]:
    return sorted(((int(c), b) for b, c in zip(boxes.xyxy, boxes.classes, strict=True)), key=lambda x: x[0])


def test_yolox_rewrite_equals_onnx_own_dimension_update(models_dir: Path, images: Path) -> None:
    """YOLOX bakes in nothing but its input size, so onnx's own tool making the input's height and
    width dynamic is an independent resize: the outputs must be the same."""
    model = onnx.load(str(models_dir / "yolox_nano.onnx"))
    ours = rewrite_input_size(model, 640, 480)
    dynamic = onnx.load(str(models_dir / "yolox_nano.onnx"))
    del dynamic.graph.value_info[:]
    theirs = update_inputs_outputs_dims(dynamic, {"images": [1, 3, "h", "w"]}, {"output": [1, "anchors", 85]})
    frame = cv2.resize(cv2.imread(str(images / "jaguar" / "AABP_13_20051007_1205.jpg")), (640, 480))
    tensor = np.ascontiguousarray(frame.transpose(2, 0, 1)[None].astype(np.float32))
    np.testing.assert_allclose(_run(ours, tensor), _run(theirs, tensor), rtol=0, atol=1e-4)


@pytest.mark.parametrize("model_name", ["yolox_nano", "fastestdet"])
def test_same_boxes_as_native_on_an_image_that_fits_both(
    models_dir: Path, images: Path, model_name: str
) -> None:
    """The native-size image in the corner of a twice-as-large input: the boxes stay where they were."""
    manifest = find_manifest(model_name)
    native = manifest.input.width
    model = onnx.load(str(models_dir / manifest.file))
    big = rewrite_input_size(model, 2 * native, 2 * native)
    image = _camera_trap_square(images, native).astype(np.float32) * manifest.input.scale
    canvas = np.full((2 * native, 2 * native, 3), manifest.input.pad_value * manifest.input.scale, np.float32)
    canvas[:native, :native] = image
    small_out = _run(model, np.ascontiguousarray(image.transpose(2, 0, 1)[None]))
    big_out = _run(big, np.ascontiguousarray(canvas.transpose(2, 0, 1)[None]))
    if model_name == "yolox_nano":
        small = nms(decode_yolox(small_out, native, native, [8, 16, 32], 0.3), 0.45)
        large = nms(decode_yolox(big_out, 2 * native, 2 * native, [8, 16, 32], 0.3), 0.45)
    else:
        small = nms(decode_fastestdet(small_out, native, native, 0.6), 0.45)
        large = nms(decode_fastestdet(big_out, 2 * native, 2 * native, 0.6, (native, native)), 0.45)
    assert len(small.scores) >= 1
    # The cougar: the best box of each, same class, the same pixels within a few percent of the image.
    assert small.classes[0] == large.classes[0]
    np.testing.assert_allclose(large.xyxy[0], small.xyxy[0], atol=0.05 * native)


def test_resized_detector_runs_at_the_new_size(models_dir: Path, images: Path) -> None:
    detector = Detector(find_manifest("yolox_nano"), models_dir, input_size=(640, 480))
    assert (detector.manifest.input.width, detector.manifest.input.height) == (640, 480)
    assert detector.min_side == 640
    found = detector.detect([cv2.imread(str(images / "classic" / "dog.jpg"))])[0]
    assert "dog" in {d.label for d in found}


def _fixed_resize_copy(models_dir: Path, folder: Path) -> Path:
    """yolox_nano with its first upsampling Resize given fixed output sizes (as some exporters write)."""
    model = onnx.load(str(models_dir / "yolox_nano.onnx"))
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred.graph.value_info}
    node = next(n for n in model.graph.node if n.op_type == "Resize")
    n, c, h, w = shapes[node.input[0]]
    sizes = numpy_helper.from_array(np.array([n, c, 2 * h, 2 * w], np.int64), "fixed_sizes")
    model.graph.initializer.append(sizes)
    empty = numpy_helper.from_array(np.array([], np.float32), "no_scales")
    model.graph.initializer.append(empty)
    node.input[:] = [node.input[0], node.input[1], "no_scales", "fixed_sizes"]
    path = folder / "yolox_nano.onnx"
    onnx.save(model, str(path))
    shutil.copy(models_dir / "coco80.names", folder / "coco80.names")
    return path


def test_unrewritable_graph_runs_native_with_a_one_line_reason(
    models_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _fixed_resize_copy(models_dir, tmp_path)
    with pytest.raises(GraphRewriteError, match="fixed output sizes"):
        resized_model(path, 640, 640)
    with caplog.at_level(logging.WARNING):
        detector = Detector(find_manifest("yolox_nano"), tmp_path, verify_sha256=False, input_size=(640, 640))
    assert (detector.manifest.input.width, detector.manifest.input.height) == (416, 416)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0] and "native 416x416" in warnings[0]
    assert detector.detect([np.full((300, 400, 3), 90, np.uint8)]) == [[]]


def test_sizes_that_break_the_grid_are_refused(models_dir: Path) -> None:
    model = onnx.load(str(models_dir / "fastestdet.onnx"))
    with pytest.raises(GraphRewriteError, match="multiple of 32"):
        rewrite_input_size(model, 650, 480)


def test_ambiguous_reshape_target_is_refused() -> None:
    """A Reshape target dim that equals a feature size where its position cannot tell which one."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, 32, 3, 128], np.int64), "shape")],
    )
    with pytest.raises(GraphRewriteError, match="position"):
        rewrite_input_size(helper.make_model(graph), 128, 128)


def test_a_frame_runs_at_an_input_fitted_to_its_shape(models_dir: Path, images: Path) -> None:
    """A 4:3 frame runs at 416x320 instead of 416x416 with a quarter of padding: the same pixels at the
    same scale, so the same jaguar comes out."""
    manifest = find_manifest("yolox_nano")
    fitted = Detector(manifest, models_dir, fit_shape=True)
    square = Detector(manifest, models_dir)
    frame = cv2.resize(cv2.imread(str(images / "jaguar" / "AABP_13_20051007_1205.jpg")), (500, 375))
    assert fitted.shape_for(frame) == (416, 320)
    assert fitted.shape_for(np.zeros((448, 352, 3), np.uint8)) == (352, 416)  # a portrait frame
    assert fitted.shape_for(np.zeros((266, 472, 3), np.uint8)) == (416, 256)  # 16:9
    assert square.shape_for(frame) == (416, 416)
    ours, theirs = fitted.detect([frame])[0][0], square.detect([frame])[0][0]
    assert ours.category == theirs.category == "animal"
    assert abs(ours.confidence - theirs.confidence) < 0.05
    np.testing.assert_allclose(ours.bbox, theirs.bbox, atol=0.02)


def test_a_graph_that_cannot_be_fitted_runs_every_frame_at_its_own_size(
    models_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _fixed_resize_copy(models_dir, tmp_path)
    detector = Detector(find_manifest("yolox_nano"), tmp_path, verify_sha256=False, fit_shape=True)
    frame = np.full((300, 400, 3), 90, np.uint8)
    with caplog.at_level(logging.WARNING):
        assert detector.detect([frame]) == [[]]
        assert detector.detect([frame]) == [[]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0] and "416x416" in warnings[0]
    assert detector.shape_for(frame) == (416, 416)
