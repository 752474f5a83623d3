"""The stem rewrites of ``yaguar models quantize --silu-int8`` (engine/quantize_layout.py): a SpaceToDepth
stem and the conv after it become one strided conv with the same sums, checked on onnxruntime against
the graph as it was, on a small graph with odd sizes and on the shared YOLOX-nano; and the int8 graph
made that way finds what the float model finds on real frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.integration.opencl_helpers import require_opencl
from yaguar.engine.decode import read_image
from yaguar.engine.graph_resize import resized_model
from yaguar.engine.manifest import find_manifest
from yaguar.engine.postprocess import decode_yolox, iou_xywh, nms
from yaguar.engine.preprocess import fit, to_tensor
from yaguar.engine.quantize import prepared, quantize_file
from yaguar.engine.quantize_layout import (
    fold_input_gather,
    fold_space_to_depth,
    for_onnxruntime,
    head_rows_last,
    stem_as_one_conv,
)
from yaguar.engine.quantize_silu import SILU_INT8_OPS

PERM = [3, 7, 0, 11, 4, 8, 1, 9, 5, 2, 10, 6]  # a channel order, as ORT's Focus fusion makes one


def _stem(kernel: int, stride: int = 1, gather: bool = True) -> onnx.ModelProto:
    """x [2, 3, 10, 14] -> SpaceToDepth(2) -> (Gather of PERM) -> Conv(kernel, "same") -> out."""
    rng = np.random.default_rng(kernel)
    pad = (kernel - 1) // 2
    source = "s"
    nodes = [helper.make_node("SpaceToDepth", ["x"], ["s"], blocksize=2)]
    if gather:
        nodes.append(helper.make_node("Gather", ["s", "perm"], ["g"], axis=1))
        source = "g"
    nodes.append(
        helper.make_node(
            "Conv", [source, "w", "b"], ["out"], pads=[pad] * 4, strides=[stride] * 2, name="Stem"
        )
    )
    weights = [
        numpy_helper.from_array(rng.normal(0, 0.1, (5, 12, kernel, kernel)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(0, 1, 5).astype(np.float32), "b"),
        numpy_helper.from_array(np.array(PERM, np.int64), "perm"),
    ]
    graph = helper.make_graph(
        nodes,
        "stem",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 10, 14])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


@pytest.mark.parametrize("kernel", [3, 5])
def test_a_space_to_depth_stem_is_one_strided_conv_with_the_same_sums(kernel: int) -> None:
    model = _stem(kernel)
    folded = stem_as_one_conv(model)
    assert [n.op_type for n in folded.graph.node] == ["Conv"]
    conv = folded.graph.node[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    assert conv.input[0] == "x" and attrs["strides"] == [2, 2] and attrs["kernel_shape"] == [2 * kernel] * 2
    assert {i.name for i in folded.graph.initializer} == set(conv.input[1:])  # the old weights are gone
    # pixels 0..255, as YOLOX reads them; the sums are the same terms in another order, so they
    # agree to float32 rounding of sums of 108-300 terms (about 1e-6 of the result's magnitude)
    x = np.random.default_rng(1).integers(0, 256, (2, 3, 10, 14)).astype(np.float32)
    want, got = _run(model, {"x": x}), _run(folded, {"x": x})
    assert got.shape == want.shape == (2, 5, 5, 7)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    # the Gather alone: folded into the conv's weights, the SpaceToDepth stays
    only_gather = fold_input_gather(model)
    assert [n.op_type for n in only_gather.graph.node] == ["SpaceToDepth", "Conv"]
    assert np.abs(_run(only_gather, {"x": x}) - want).max() <= 1e-5 * np.abs(want).max()


def test_a_conv_that_is_not_same_and_stride_one_is_left_as_it_is() -> None:
    strided = _stem(3, stride=2, gather=False)
    assert [n.op_type for n in fold_space_to_depth(strided).graph.node] == ["SpaceToDepth", "Conv"]
    model = _stem(3)
    model.graph.node.append(helper.make_node("Relu", ["g"], ["r"]))  # a second reader of the Gather
    model.graph.output.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, None))
    assert [n.op_type for n in fold_input_gather(model).graph.node] == [
        "SpaceToDepth",
        "Gather",
        "Conv",
        "Relu",
    ]


def _head() -> onnx.ModelProto:
    """Three maps [2, 6, H, W] of odd sizes, each flattened to [2, 6, H*W] by a Reshape whose target
    has the batch in it (as YOLOX's export has), concatenated (axis 2) and transposed to [2, cells, 6]."""
    sides = [(5, 7), (3, 4), (1, 2)]
    nodes, names = [], []
    for i, _ in enumerate(sides):
        nodes.append(helper.make_node("Reshape", [f"m{i}", "flat"], [f"f{i}"], name=f"Flat{i}"))
        names.append(f"f{i}")
    nodes += [
        helper.make_node("Concat", names, ["c"], axis=2, name="Cells"),
        helper.make_node("Transpose", ["c"], ["out"], perm=[0, 2, 1], name="Rows"),
    ]
    graph = helper.make_graph(
        nodes,
        "head",
        [
            helper.make_tensor_value_info(f"m{i}", TensorProto.FLOAT, [2, 6, h, w])
            for i, (h, w) in enumerate(sides)
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2, 49, 6])],
        [numpy_helper.from_array(np.array([2, 6, -1], np.int64), "flat")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_the_head_rows_are_made_channels_last_per_map_with_the_same_values() -> None:
    model = _head()
    rows = head_rows_last(model)
    ops = [n.op_type for n in rows.graph.node]
    assert ops.count("Transpose") == 3 and ops[-1] == "Concat"  # one per map, none on the result
    perms = [helper.get_attribute_value(a) for n in rows.graph.node for a in n.attribute if a.name == "perm"]
    assert perms == [[0, 2, 3, 1]] * 3
    rng = np.random.default_rng(5)
    feeds = {
        f"m{i}": rng.normal(size=(2, 6, h, w)).astype(np.float32)
        for i, (h, w) in enumerate([(5, 7), (3, 4), (1, 2)])
    }
    assert np.array_equal(_run(rows, feeds), _run(model, feeds))  # data movement only: equal bits
    model.graph.node[-1].attribute[0].ints[:] = [1, 0, 2]  # another output layout: left as it is
    assert [n.op_type for n in head_rows_last(model).graph.node][-1] == "Transpose"


@pytest.fixture(scope="module")
def yolox(models_dir: Path) -> onnx.ModelProto:
    """The shared YOLOX-nano after onnxruntime's pre-processing, as ``quantize_file`` has it: its
    Focus stem is SpaceToDepth + Gather + Conv there."""
    return prepared(onnx.load(str(models_dir / "yolox_nano.onnx")))


def _frames(images: Path) -> list[np.ndarray]:
    spec = find_manifest("yolox_nano").input
    paths = [images / "classic" / "dog.jpg", images / "classic" / "horses.jpg"]
    return [to_tensor([fit(read_image(p).pixels, spec)[0]], spec) for p in paths]


def test_yolox_rewritten_gives_the_float_model_s_outputs(yolox: onnx.ModelProto, images: Path) -> None:
    folded = for_onnxruntime(yolox)
    ops = [n.op_type for n in folded.graph.node]
    assert "SpaceToDepth" not in ops and "Gather" not in ops and ops[-1] == "Concat"
    for x in _frames(images):
        want, got = _run(yolox, {"images": x}), _run(folded, {"images": x})
        # boxes in pixels (up to ~416) and scores in 0..1: float32 rounding only
        assert np.abs(got - want).max() < 1e-3
        assert np.abs(got[..., 4:] - want[..., 4:]).max() < 1e-4


def _boxes(out: np.ndarray, threshold: float) -> list[tuple[int, float, list[float]]]:
    """(class, score, [x, y, w, h]) of one image's YOLOX output over ``threshold``, decoded as the
    detector decodes it (NMS at the manifest's 0.45)."""
    raw = nms(decode_yolox(out, 416, 416, [8, 16, 32], threshold), 0.45)
    return [
        (int(c), float(s), [b[0], b[1], b[2] - b[0], b[3] - b[1]])
        for b, s, c in zip(raw.xyxy, raw.scores, raw.classes, strict=True)
    ]


@pytest.fixture(scope="module")
def silu_int8(
    models_dir: Path, images: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str]]:
    """YOLOX-nano quantised as ``--silu-int8`` does (calibrated on the two test frames), and the
    convs it kept float."""
    path = tmp_path_factory.mktemp("int8") / "yolox_nano_int8.onnx"
    kept = quantize_file(
        onnx.load(str(models_dir / "yolox_nano.onnx")), path, _frames(images), "images", SILU_INT8_OPS
    )
    return path, kept


def test_yolox_silu_int8_keeps_only_the_stem_float_and_finds_what_float_finds(
    silu_int8: tuple[Path, list[str]], models_dir: Path, images: Path
) -> None:
    path, kept = silu_int8
    assert kept == ["Conv_41", "Conv_44"]  # the stem conv and the depthwise conv that reads it
    int8 = onnx.load(str(path))
    assert "SpaceToDepth" not in {n.op_type for n in int8.graph.node}
    # as onnxruntime optimises it: int8 channels-last from the first int8 conv to the head's outputs,
    # with one layout Transpose left (uint8, after the float stem)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.optimized_model_filepath = str(path.with_suffix(".optimized.onnx"))
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    optimized = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    assert optimized.count("Transpose") == 1 and optimized.count("QLinearConv") == 111
    # the station runs it at 416x320 and 832x640 (graph_resize.py): the new head's Reshapes are size-free
    resized = resized_model(path, 416, 320)
    assert _run(resized, {"images": np.zeros((1, 3, 320, 416), np.float32)}).shape == (
        1,
        52 * 40 + 26 * 20 + 13 * 10,
        85,
    )
    float_model = onnx.load(str(models_dir / "yolox_nano.onnx"))
    for x in _frames(images):
        want, got = _run(float_model, {"images": x})[0], _run(int8, {"images": x})[0]
        # each confident float box (score >= 0.5) has an int8 box of its class over it, its score
        # within 0.15: int8 rounds every activation to 256 levels, and the scores of the shared
        # frames moved by up to about 0.1 (mean 0.108 over 20 calibration frames, where float > 0.05)
        found = _boxes(got, 0.25)
        for cls, score, box in _boxes(want, 0.5):
            near = [s for c, s, b in found if c == cls and iou_xywh(b, box) >= 0.7]
            assert near and abs(max(near) - score) < 0.15, (cls, score, near)


@pytest.mark.parametrize("int8_kernels", [False, True])
def test_the_opencl_backend_runs_the_silu_int8_graph(
    silu_int8: tuple[Path, list[str]], images: Path, int8_kernels: bool
) -> None:
    """OpenCL on the same graph (fp32 with fake-quant, the CPU default, and its int8 kernels with
    per-op fallbacks for the SiLUs): the detections of onnxruntime's int8 run. Both round some
    values to the next uint8 step where onnxruntime does not (float SiLU against its lookup table)
    and later layers carry that on: strong boxes stay within 0.05; a weak one on dog.jpg moved by
    0.09 (0.41 against 0.32) with the graph calibrated on the 20 shared frames."""
    require_opencl()
    from yaguar.engine.backends.opencl import OpenCLBackend

    path, _ = silu_int8
    frames = _frames(images)
    ref = np.concatenate([_run(onnx.load(str(path)), {"images": f}) for f in frames])
    x = np.concatenate(frames)
    got = OpenCLBackend(path, {"int8": int8_kernels}).run({"images": x})[0]
    for g, r in zip(got, ref, strict=True):
        want, have = _boxes(r, 0.25), _boxes(g, 0.25)
        assert len(have) == len(want)
        for cls, score, box in want:  # each box found again, matched by place (NMS orders by score)
            near = [t for c, t, b in have if c == cls and iou_xywh(b, box) > 0.8]
            assert near and abs(near[0] - score) < (0.05 if score >= 0.5 else 0.12), (cls, score, near)


def test_torch_runs_the_silu_int8_graph_at_any_batch(silu_int8: tuple[Path, list[str]], images: Path) -> None:
    """``yaguar models quantize --finetune`` trains through this graph in torch (torch_graph.py) at
    batches of several frames: the new head's Reshapes keep the export's batch-1 target, which it
    fixes, so each frame's rows are its own."""
    import torch

    from yaguar.engine.torch_graph import TorchGraph

    graph = TorchGraph(onnx.load(str(silu_int8[0]))).eval()
    frames = [torch.from_numpy(f) for f in _frames(images)]
    with torch.no_grad():
        both = graph(torch.cat(frames)).numpy()
        alone = np.concatenate([graph(f).numpy() for f in frames])
    assert both.shape == (2, 3549, 85)
    assert np.abs(both - alone).max() < 1e-3
