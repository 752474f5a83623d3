"""Each OpenCL kernel against onnxruntime on odd shapes (channels 3, 13, 31; sizes 1, 7, 97;
strides, paddings, groups, dilations), one small ONNX graph per case.

Tolerance: both sides accumulate in fp32 but in different orders; the error of a K-term sum is
bounded by about K * eps * sum|terms| (eps = 6e-8), so a conv with K = cin/groups * kh * kw gets
atol = 4 * K * eps * max|ref| (at least 1e-5) and rtol 1e-5; ops without sums get 1e-5/1e-6
(a transcendental like exp or erf differs by a few ulp between libm and the OpenCL builtins).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from tests.integration.opencl_helpers import model, ort_run, rand, require_opencl

EPS = float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_opencl()
    return tmp_path_factory.mktemp("opencl-kernels")


def run_both(m, feeds: dict[str, np.ndarray], cache_dir: Path, **options: object) -> tuple[list, list]:
    from yaguar.engine.backends.opencl import OpenCLBackend

    be = OpenCLBackend(m, {"cache_dir": cache_dir, **options})
    return be.run(feeds), ort_run(m, feeds)


def close(got: np.ndarray, ref: np.ndarray, k: int = 1) -> None:
    assert got.shape == ref.shape
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=max(1e-5, 4 * k * EPS * scale))


CONV_CASES = [
    # n, c, h, w, cout, k, stride, pad, group, dilation
    (1, 3, 7, 7, 13, 3, 1, 1, 1, 1),
    (1, 13, 97, 97, 31, 1, 1, 0, 1, 1),  # 1x1 GEMM path, odd pixel count
    (2, 31, 7, 7, 31, 3, 2, 1, 31, 1),  # depthwise stride 2
    (1, 13, 97, 97, 13, 3, 1, 1, 13, 1),  # depthwise, wide rows
    (1, 31, 1, 1, 13, 1, 1, 0, 1, 1),  # 1x1 pixel
    (1, 3, 13, 13, 13, 5, 2, 2, 1, 1),  # 5x5 stride 2
    (1, 12, 13, 13, 8, 3, 1, 2, 4, 2),  # grouped, dilation 2
    (1, 3, 97, 97, 13, 7, 2, 3, 1, 1),  # ResNet stem shape
    (1, 13, 7, 7, 31, 3, 1, 0, 1, 1),  # no padding
    (1, 31, 13, 13, 13, 1, 2, 0, 1, 1),  # 1x1 stride 2 (general path)
    (2, 12, 9, 37, 21, 3, 1, 1, 1, 1),  # the CPU's 16-channel tile (YOLOX stem) and a partial block
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "n{}c{}x{}x{}-o{}k{}s{}p{}g{}d{}".format(*c))
def test_conv(case: tuple[int, ...], cache_dir: Path) -> None:
    n, c, h, w, co, k, s, p, g, d = case
    node = helper.make_node(
        "Conv",
        ["x", "W", "B"],
        ["y"],
        kernel_shape=[k, k],
        strides=[s, s],
        pads=[p] * 4,
        group=g,
        dilations=[d, d],
    )
    m = model(
        [node], {"x": [n, c, h, w]}, ["y"], {"W": rand(co, c // g, k, k, seed=1), "B": rand(co, seed=2)}
    )
    got, ref = run_both(m, {"x": rand(n, c, h, w)}, cache_dir)
    close(got[0], ref[0], k=c // g * k * k)


def test_conv_same_upper_asymmetric_padding(cache_dir: Path) -> None:
    node = helper.make_node(
        "Conv", ["x", "W"], ["y"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"
    )
    m = model([node], {"x": [1, 3, 8, 8]}, ["y"], {"W": rand(5, 3, 3, 3, seed=1)})
    got, ref = run_both(m, {"x": rand(1, 3, 8, 8)}, cache_dir)
    close(got[0], ref[0], k=27)


def _conv(name: str, x: str, cin: int, cout: int, k: int = 3, seed: int = 1) -> tuple:
    consts = {f"{name}W": rand(cout, cin, k, k, seed=seed, scale=0.3), f"{name}B": rand(cout, seed=seed + 1)}
    node = helper.make_node(
        "Conv", [x, f"{name}W", f"{name}B"], [name], kernel_shape=[k, k], pads=[k // 2] * 4
    )
    return node, consts


@pytest.mark.parametrize("act", ["Relu", "Clip", "Sigmoid", "SiLU", "Residual", "ResidualRelu", "LeakyRelu"])
def test_fused_conv_epilogue(act: str, cache_dir: Path) -> None:
    """Conv + bias + activation (+ residual Add) run as one launch and match the unfused graph."""
    c1, k1 = _conv("c1", "x", 13, 13)
    c2, k2 = _conv("c2", "c1", 13, 13, seed=5)
    nodes, consts = [c1, c2], {**k1, **k2}
    if act == "Clip":
        consts.update(lo=np.array(0.0, np.float32), hi=np.array(6.0, np.float32))
        nodes.append(helper.make_node("Clip", ["c2", "lo", "hi"], ["y"]))
    elif act == "SiLU":
        nodes += [helper.make_node("Sigmoid", ["c2"], ["s"]), helper.make_node("Mul", ["c2", "s"], ["y"])]
    elif act == "Residual":
        nodes.append(helper.make_node("Add", ["c2", "c1"], ["y"]))
    elif act == "ResidualRelu":
        nodes += [helper.make_node("Add", ["c1", "c2"], ["r"]), helper.make_node("Relu", ["r"], ["y"])]
    elif act == "LeakyRelu":
        nodes.append(helper.make_node("LeakyRelu", ["c2"], ["y"], alpha=0.1))
    else:
        nodes.append(helper.make_node(act, ["c2"], ["y"]))
    m = model(nodes, {"x": [2, 13, 7, 9]}, ["y"], consts)
    from yaguar.engine.backends.opencl import OpenCLBackend

    be = OpenCLBackend(m, {"cache_dir": cache_dir})
    plan = be.plan_for({"x": np.zeros((2, 13, 7, 9), np.float32)})
    assert [la.kernel_name.split("[")[0] for la in plan.launches] == ["conv2d", "conv2d"]  # all fused
    x = rand(2, 13, 7, 9)
    close(be.run({"x": x})[0], ort_run(m, {"x": x})[0], k=13 * 9 * 4)


def test_concat_written_in_place_at_batch_3(cache_dir: Path) -> None:
    """Producers write into their channel slice of a Concat (a view with a wider batch stride);
    consumers (a conv, a residual Add, a pool) read those views."""
    a, ka = _conv("a", "x", 3, 13, k=1)
    b, kb = _conv("b", "x", 3, 31, k=3, seed=7)
    nodes = [
        a,
        b,
        helper.make_node("Concat", ["a", "b"], ["cat"], axis=1),
        helper.make_node("MaxPool", ["a"], ["pa"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["pa", "a"], ["y2"]),
    ]
    c, kc = _conv("c", "cat", 44, 13, k=1, seed=9)
    nodes += [c, helper.make_node("Add", ["c", "a"], ["y"])]
    m = model(nodes, {"x": [3, 3, 7, 7]}, ["y", "cat", "y2"], {**ka, **kb, **kc})
    from yaguar.engine.backends.opencl import OpenCLBackend

    be = OpenCLBackend(m, {"cache_dir": cache_dir})
    plan = be.plan_for({"x": np.zeros((3, 3, 7, 7), np.float32)})
    assert not any("concat_copy" in la.kernel_name for la in plan.launches)
    x = rand(3, 3, 7, 7)
    for got, ref in zip(be.run({"x": x}), ort_run(m, {"x": x}), strict=True):
        close(got, ref, k=44)


@pytest.mark.parametrize("concat_is_output", [False, True])
def test_transpose_of_concat_written_in_place(concat_is_output: bool, cache_dir: Path) -> None:
    """YOLOX's head: three maps reshaped to (N, C, HW), concatenated along the pixels and
    transposed to (N, pixels, C). Each part is transposed straight into its rows of the output
    (views.transpose_of_concat), unless the Concat itself is read too."""
    nodes, consts, parts = [], {}, []
    for i, (h, w) in enumerate([(7, 9), (3, 5), (1, 3)]):
        conv, kc = _conv(f"c{i}", f"x{i}", 3, 11, k=1, seed=i + 3)
        shape = np.array([2, 11, h * w], np.int64)
        nodes += [conv, helper.make_node("Reshape", [f"c{i}", f"s{i}"], [f"r{i}"])]
        consts |= {**kc, f"s{i}": shape}
        parts.append(f"r{i}")
    nodes += [
        helper.make_node("Concat", parts, ["cat"], axis=2),
        helper.make_node("Transpose", ["cat"], ["y"], perm=[0, 2, 1]),
    ]
    inputs = {"x0": [2, 3, 7, 9], "x1": [2, 3, 3, 5], "x2": [2, 3, 1, 3]}
    m = model(nodes, inputs, ["y", "cat"] if concat_is_output else ["y"], consts)
    from yaguar.engine.backends.opencl import OpenCLBackend

    be = OpenCLBackend(m, {"cache_dir": cache_dir})
    feeds = {name: rand(*shape, seed=j) for j, (name, shape) in enumerate(inputs.items())}
    names = [la.kernel_name for la in be.plan_for(feeds).launches]
    assert names.count("transpose") == (1 if concat_is_output else 3)
    assert names.count("concat_copy") == (3 if concat_is_output else 0)
    for got, ref in zip(be.run(feeds), ort_run(m, feeds), strict=True):
        close(got, ref, k=3)


POOL_CASES = [
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, (1, 13, 97, 97)),
    ("MaxPool", {"kernel_shape": [5, 5], "pads": [2, 2, 2, 2]}, (2, 31, 7, 7)),  # separable from 5x5
    ("MaxPool", {"kernel_shape": [13, 13], "pads": [6, 6, 6, 6]}, (1, 5, 13, 13)),  # SPP's largest
    ("MaxPool", {"kernel_shape": [9, 5], "pads": [4, 1, 3, 2]}, (1, 3, 11, 37)),  # edge and inner chunks
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, (1, 3, 8, 8)),
    ("MaxPool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, (1, 13, 31, 97)),  # 8-wide, stride 1
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [3, 3], "dilations": [2, 2]}, (1, 3, 13, 13)),  # scalar
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, (1, 13, 7, 7)),
    (
        "AveragePool",
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1},
        (1, 13, 7, 7),
    ),
    ("AveragePool", {"kernel_shape": [7, 7]}, (2, 31, 7, 7)),  # the whole map: global_pool
    ("MaxPool", {"kernel_shape": [5, 3]}, (2, 7, 5, 3)),  # the whole map: global_pool
    ("GlobalAveragePool", {}, (2, 31, 7, 7)),
    ("GlobalMaxPool", {}, (1, 13, 1, 1)),
]


@pytest.mark.parametrize(("op", "attrs", "shape"), POOL_CASES)
def test_pooling(op: str, attrs: dict, shape: tuple[int, ...], cache_dir: Path) -> None:
    m = model([helper.make_node(op, ["x"], ["y"], **attrs)], {"x": list(shape)}, ["y"])
    got, ref = run_both(m, {"x": rand(*shape)}, cache_dir)
    close(got[0], ref[0], k=49)


RESIZE_CASES = [
    (
        {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
        [1, 1, 2, 2],
    ),
    ({"mode": "nearest"}, [1, 1, 1.5, 1.5]),
    ({"mode": "nearest"}, [1, 1, 3, 2]),  # integer factors: the vector variant
    ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric"}, [1, 1, 2, 2]),  # not floor: generic
    ({"mode": "linear"}, [1, 1, 2, 2]),
    ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, [1, 1, 2.0, 3.0]),
    ({"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}, [1, 1, 0.5, 0.5]),
]


@pytest.mark.parametrize(("attrs", "scales"), RESIZE_CASES)
def test_resize(attrs: dict, scales: list[float], cache_dir: Path) -> None:
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], **attrs)
    m = model([node], {"x": [1, 13, 7, 13]}, ["y"], {"s": np.array(scales, np.float32)})
    got, ref = run_both(m, {"x": rand(1, 13, 7, 13)}, cache_dir)
    close(got[0], ref[0], k=4)


BINARY_CASES = [
    ("Add", (2, 13, 7, 7), (13, 1, 1)),
    ("Mul", (2, 13, 7, 7), (2, 13, 1, 1)),  # squeeze-excitation scaling
    ("Sub", (1, 31, 97), (1,)),
    ("Div", (3, 7), (3, 7)),
    ("Max", (1, 3, 1, 7), (1, 1, 13, 1)),  # both sides broadcast
    ("Min", (2, 1, 7), (13, 1)),
    ("Pow", (1, 13, 7), (1,)),
]


@pytest.mark.parametrize(("op", "a", "b"), BINARY_CASES)
def test_binary_broadcast(op: str, a: tuple, b: tuple, cache_dir: Path) -> None:
    m = model([helper.make_node(op, ["a", "b"], ["y"])], {"a": list(a), "b": list(b)}, ["y"])
    xa, xb = rand(*a), rand(*b, seed=3)
    if op == "Pow":
        xa, xb = np.abs(xa) + 0.1, np.full(b, 2.0, np.float32)
    if op == "Div":
        xb = np.where(np.abs(xb) < 0.1, 1.0, xb).astype(np.float32)
    got, ref = run_both(m, {"a": xa, "b": xb}, cache_dir)
    close(got[0], ref[0])


@pytest.mark.parametrize(
    ("op", "attrs"),
    [
        ("Sigmoid", {}),
        ("Tanh", {}),
        ("Exp", {}),
        ("Relu", {}),
        ("LeakyRelu", {"alpha": 0.2}),
        ("HardSigmoid", {}),
        ("HardSwish", {}),
        ("Neg", {}),
        ("Abs", {}),
        ("Erf", {}),
        ("Floor", {}),
    ],
)
def test_unary(op: str, attrs: dict, cache_dir: Path) -> None:
    m = model([helper.make_node(op, ["x"], ["y"], **attrs)], {"x": [2, 13, 7]}, ["y"], opset=14)
    got, ref = run_both(m, {"x": rand(2, 13, 7, scale=2.0)}, cache_dir)
    close(got[0], ref[0], k=4)


@pytest.mark.parametrize(
    ("op", "axis", "shape"),
    [("Softmax", 1, (2, 13, 7)), ("Softmax", -1, (3, 97)), ("LogSoftmax", -1, (1, 31))],
)
def test_softmax(op: str, axis: int, shape: tuple, cache_dir: Path) -> None:
    m = model([helper.make_node(op, ["x"], ["y"], axis=axis)], {"x": list(shape)}, ["y"])
    got, ref = run_both(m, {"x": rand(*shape, scale=3.0)}, cache_dir)
    close(got[0], ref[0], k=shape[axis])


def test_gemm_and_matmul(cache_dir: Path) -> None:
    nodes = [
        helper.make_node("Gemm", ["x", "W", "B"], ["g"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("MatMul", ["x3", "M"], ["mm"]),
        helper.make_node("MatMul", ["x3", "x3t"], ["mm2"]),
    ]
    consts = {"W": rand(31, 13, seed=1), "B": rand(31, seed=2), "M": rand(13, 7, seed=4)}
    m = model(nodes, {"x": [3, 13], "x3": [2, 7, 13], "x3t": [2, 13, 5]}, ["g", "mm", "mm2"], consts)
    feeds = {"x": rand(3, 13), "x3": rand(2, 7, 13, seed=5), "x3t": rand(2, 13, 5, seed=6)}
    got, ref = run_both(m, feeds, cache_dir)
    for g, r in zip(got, ref, strict=True):
        close(g, r, k=13)


def test_layout_ops(cache_dir: Path) -> None:
    """Transpose, Slice (steps, negative), Split, Concat (axis 2), Gather, Pad, Reshape of a
    transposed tensor (a copy), Expand, Flatten, Squeeze/Unsqueeze, ReduceMean."""
    consts = {
        "st": np.array([0, 1], np.int64),
        "en": np.array([2**62, -1], np.int64),
        "ax": np.array([2, 3], np.int64),
        "sp": np.array([1, 2], np.int64),
        "gi": np.array([2, 0, 5], np.int64),
        "g0": np.array(1, np.int64),
        "pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64),
        "shape": np.array([2, -1], np.int64),
        "ex": np.array([2, 13, 7, 9], np.int64),
        "sq": np.array([1], np.int64),
        "sp3": np.array([4, 4, 5], np.int64),
    }
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["s"]),
        helper.make_node("Split", ["x", "sp3"], ["s1", "s2", "s3"], axis=1),
        helper.make_node("Concat", ["s3", "s1"], ["c"], axis=1),
        helper.make_node("Concat", ["x", "x"], ["c2"], axis=2),
        helper.make_node("Gather", ["x", "gi"], ["g"], axis=1),
        helper.make_node("Gather", ["x", "g0"], ["g1"], axis=3),
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant"),
        helper.make_node("Reshape", ["t", "shape"], ["r"]),
        helper.make_node("Expand", ["b", "ex"], ["e"]),
        helper.make_node("Flatten", ["x"], ["f"], axis=2),
        helper.make_node("Unsqueeze", ["g1", "sq"], ["u"]),
        helper.make_node("ReduceMean", ["x"], ["rm"], axes=[2, 3], keepdims=1),
    ]
    outs = ["t", "s", "s2", "c", "c2", "g", "g1", "p", "r", "e", "f", "u", "rm"]
    m = model(nodes, {"x": [2, 13, 7, 9], "b": [1, 13, 1, 9]}, outs, consts, opset=13)
    m.opset_import[0].version = 13
    feeds = {"x": rand(2, 13, 7, 9), "b": rand(1, 13, 1, 9, seed=3)}
    got, ref = run_both(m, feeds, cache_dir)
    for name, g, r in zip(outs, got, ref, strict=True):
        assert g.shape == r.shape, name
        close(g, r, k=63)


def test_unsupported_op_names_op_and_node(cache_dir: Path) -> None:
    from yaguar.engine.backends.base import BackendError
    from yaguar.engine.backends.opencl import OpenCLBackend

    node = helper.make_node("Einsum", ["x", "x"], ["y"], equation="ij,ij->i", name="my_einsum")
    m = model([node], {"x": [3, 4]}, ["y"], opset=13)
    with pytest.raises(BackendError, match=r"unsupported op Einsum \(node 'my_einsum'\)"):
        OpenCLBackend(m, {"cache_dir": cache_dir})


def test_auto_falls_back_to_onnxruntime_with_one_line(
    tmp_path: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import onnx

    from yaguar.engine.backends import create_backend

    node = helper.make_node("Einsum", ["x", "x"], ["y"], equation="ij,ij->i", name="dot")
    path = tmp_path / "einsum.onnx"
    onnx.save(model([node], {"x": [3, 4]}, ["y"], opset=13), str(path))
    with caplog.at_level(logging.INFO, logger="yaguar.engine.backends.registry"):
        be = create_backend("auto", path, {"cache_dir": cache_dir})
    assert be.kind == "onnxruntime"
    lines = [r.getMessage() for r in caplog.records if r.name == "yaguar.engine.backends.registry"]
    assert len(lines) == 1 and "Einsum" in lines[0] and "einsum.onnx" in lines[0]
    x = rand(3, 4)
    np.testing.assert_allclose(be.run({"x": x})[0], (x * x).sum(1), rtol=1e-6)


def test_fp16_storage_within_half_precision(cache_dir: Path) -> None:
    """fp16 storage: each stored tensor is rounded to half (relative error <= 2^-11 = 4.9e-4);
    the input, one intermediate and the output are stored, and the second conv sums 117 of those
    rounded values, so the error stays within ~3 * 2^-11 of the range: we allow 5e-3 of it."""
    c1, k1 = _conv("c1", "x", 13, 13)
    c2, k2 = _conv("c2", "r", 13, 31, seed=5)
    m = model([c1, helper.make_node("Relu", ["c1"], ["r"]), c2], {"x": [1, 13, 13, 13]}, ["c2"], {**k1, **k2})
    x = rand(1, 13, 13, 13)
    got, ref = run_both(m, {"x": x}, cache_dir, fp16=True)
    assert got[0].dtype == np.float32
    err = np.abs(got[0] - ref[0]).max() / np.abs(ref[0]).max()
    assert 0 < err < 5e-3  # not zero: the half storage is really used


def test_program_cache_hits_on_second_load(tmp_path: Path) -> None:
    from yaguar.engine.backends.opencl import OpenCLBackend

    c1, k1 = _conv("c1", "x", 3, 13)
    m = model([c1, helper.make_node("Sigmoid", ["c1"], ["y"])], {"x": [1, 3, 7, 7]}, ["y"], k1)
    first = OpenCLBackend(m, {"cache_dir": tmp_path})
    assert first.runtime.cache.misses > 0 and first.runtime.cache.stores == first.runtime.cache.misses
    assert list((tmp_path / "programs").glob("*.bin"))
    second = OpenCLBackend(m, {"cache_dir": tmp_path})
    assert second.runtime.cache.misses == 0 and second.runtime.cache.hits == first.runtime.cache.misses
    x = rand(1, 3, 7, 7)
    np.testing.assert_array_equal(first.run({"x": x})[0], second.run({"x": x})[0])


def test_autotune_choices_are_cached_per_device(tmp_path: Path) -> None:
    import json

    from yaguar.engine.backends.opencl import OpenCLBackend

    # A dilated depthwise stride-2 layer (the per-pixel kernel only): 3 tiles x 3 work-group
    # widths keep this test short on a cold PoCL (each candidate is a program build); the 1x1
    # variants are tested above.
    w = rand(13, 1, 3, 3, seed=1)
    node = helper.make_node(
        "Conv",
        ["x", "W"],
        ["c1"],
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[2] * 4,
        dilations=[2, 2],
        group=13,
    )
    m = model([node], {"x": [1, 13, 13, 13]}, ["c1"], {"W": w})
    first = OpenCLBackend(m, {"cache_dir": tmp_path, "autotune": True})
    data = json.loads((tmp_path / "autotune.json").read_text())
    ((device_key, choices),) = data.items()
    assert first.runtime.label in device_key and len(choices) == 1
    assert next(iter(choices)).startswith("dw:") and "WG" in next(iter(choices.values()))
    second = OpenCLBackend(m, {"cache_dir": tmp_path, "autotune": True})
    plan = second.plan_for({"x": np.zeros((1, 13, 13, 13), np.float32)})
    assert plan.launches[0].tune is not None
    assert plan.launches[0].tune.current == next(iter(choices.values()))
    x = rand(1, 13, 13, 13)
    close(second.run({"x": x})[0], ort_run(m, {"x": x})[0], k=9)


def test_bad_options_and_bad_input_are_clear_errors(cache_dir: Path) -> None:
    from yaguar.engine.backends.base import BackendError
    from yaguar.engine.backends.opencl import OpenCLBackend

    m = model([helper.make_node("Relu", ["x"], ["y"])], {"x": [1, 3]}, ["y"])
    with pytest.raises(BackendError, match="bad OpenCL backend options"):
        OpenCLBackend(m, {"cache_dir": cache_dir, "colour": "blue"})
    with pytest.raises(BackendError, match="no OpenCL device matches 'no-such-gpu'"):
        OpenCLBackend(m, {"cache_dir": cache_dir, "device": "no-such-gpu"})
    from yaguar.engine.backends.opencl.runtime import device_label, select_device

    # A selector is a case-insensitive substring of "platform / device" (PoCL here, NVIDIA on a GPU).
    label = device_label(select_device(None))
    be = OpenCLBackend(m, {"cache_dir": cache_dir, "device": label[2:12].upper()})
    with pytest.raises(BackendError, match="shape"):
        be.run({"x": np.zeros((1, 4), np.float32)})


def test_auto_without_an_opencl_platform_starts_on_onnxruntime(tmp_path: Path) -> None:
    """A station with no OpenCL driver (the ICD loader finds no platform): ``auto`` loads the model
    on onnxruntime and says why in one log line. Run in a fresh process so the loader is cold."""
    import os
    import subprocess
    import sys

    import onnx

    path = tmp_path / "relu.onnx"
    onnx.save(model([helper.make_node("Relu", ["x"], ["y"])], {"x": [1, 3]}, ["y"]), str(path))
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(message)s')\n"
        "from yaguar.engine.backends import create_backend\n"
        f"b = create_backend('auto', {str(path)!r}, {{'cache_dir': {str(tmp_path)!r}}})\n"
        "print('KIND', b.kind)\n"
    )
    env = {**os.environ, "OCL_ICD_VENDORS": str(tmp_path / "no-vendors"), "OCL_ICD_FILENAMES": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "KIND onnxruntime"
    assert any("relu.onnx: using onnxruntime instead" in line and "OpenCL" in line for line in lines)


CONV1X1_VARIANTS = [
    {"LMEM": 1, "TM": 4, "BM": 32, "BN": 64, "BK": 16},
    {"LMEM": 1, "TM": 8, "BM": 64, "BN": 64, "BK": 16},
    {"TM": 8, "NV": 1, "CO_INNER": 1},
    {"TM": 6, "NV": 2},
]


@pytest.mark.parametrize("tile", CONV1X1_VARIANTS, ids=lambda t: "-".join(f"{k}{v}" for k, v in t.items()))
@pytest.mark.parametrize(("n", "c", "hw", "co"), [(2, 13, 97, 31), (1, 31, 7, 13)])
def test_conv1x1_variants(tile: dict, n: int, c: int, hw: int, co: int, cache_dir: Path) -> None:
    """The autotuner's other 1x1 kernels are exact on odd sizes too (K, pixels and channels that
    are not multiples of their tiles, batch > 1, the fused epilogue): the local-memory tiled GEMM
    (the GPU default), the channel-loop-inside variant, a 6-channel tile."""
    from yaguar.engine.backends.opencl.executor import Plan
    from yaguar.engine.backends.opencl.runtime import open_runtime

    c1, k1 = _conv("c1", "x", c, co, k=1)
    m = model([c1, helper.make_node("Relu", ["c1"], ["y"])], {"x": [n, c, hw, hw]}, ["y"], k1)
    rt = open_runtime(None, cache_dir)
    signature = Plan(m, rt, None, False).launches[0].tune.signature
    plan = Plan(m, rt, None, False, choices={signature: tile})
    assert plan.launches[0].kernel_name == ("conv2d_1x1_lmem" if tile.get("LMEM") else "conv2d_1x1")
    assert plan.launches[0].tune.current == tile
    x = rand(n, c, hw, hw)
    close(plan.run({"x": x})[0], ort_run(m, {"x": x})[0], k=c)
