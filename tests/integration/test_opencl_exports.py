"""The op patterns of standard exports we have no files for (YOLOv5 / MegaDetector v5, YOLOv8,
ResNet-50, EfficientNet-B0, MobileNetV2 float), each as a small ONNX graph with random weights,
run on the OpenCL backend against onnxruntime. Same tolerance rule as test_opencl_kernels: fp32
sums in a different order, K * eps of the range per summed layer (we allow 1e-4 of the range for
these 3-6 layer graphs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from tests.integration.opencl_helpers import model, ort_run, rand, require_opencl


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_opencl()
    return tmp_path_factory.mktemp("opencl-exports")


class G:
    """A tiny graph builder: each helper appends nodes and returns the output name."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.consts: dict[str, np.ndarray] = {}
        self.seed = 10

    def const(self, arr: np.ndarray) -> str:
        name = f"k{len(self.consts)}"
        self.consts[name] = np.asarray(arr)
        return name

    def op(self, op: str, inputs: list[str], n_out: int = 1, **attrs: object) -> str | list[str]:
        outs = [f"t{len(self.nodes)}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def conv(self, x: str, cin: int, cout: int, k: int = 1, s: int = 1, g: int = 1, bias: bool = True) -> str:
        self.seed += 1
        w = self.const(rand(cout, cin // g, k, k, seed=self.seed, scale=1.0 / np.sqrt(cin // g * k * k)))
        ins = [x, w] + ([self.const(rand(cout, seed=self.seed + 100, scale=0.1))] if bias else [])
        return self.op("Conv", ins, kernel_shape=[k, k], strides=[s, s], pads=[k // 2] * 4, group=g)

    def silu(self, x: str) -> str:
        return self.op("Mul", [x, self.op("Sigmoid", [x])])

    def bn(self, x: str, c: int) -> str:
        self.seed += 1
        r = np.random.default_rng(self.seed)
        params = [r.uniform(0.5, 1.5, c), r.normal(0, 0.1, c), r.normal(0, 0.1, c), r.uniform(0.5, 1.5, c)]
        return self.op("BatchNormalization", [x, *(self.const(p.astype(np.float32)) for p in params)])

    def i64(self, *v: int) -> str:
        return self.const(np.array(v, np.int64))


def check(
    g: G,
    inputs: dict[str, list[int]],
    outputs: list[str],
    cache_dir: Path,
    opset: int = 13,
    expect_launches_below: int | None = None,
) -> None:
    from yaguar.engine.backends.opencl import OpenCLBackend

    m = model(g.nodes, inputs, outputs, g.consts, opset=opset)
    feeds = {k: rand(*v, seed=i) for i, (k, v) in enumerate(inputs.items())}
    be = OpenCLBackend(m, {"cache_dir": cache_dir})
    got, ref = be.run(feeds), ort_run(m, feeds)
    for name, a, b in zip(outputs, got, ref, strict=True):
        assert a.shape == b.shape, name
        np.testing.assert_allclose(
            a, b, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(b).max())), err_msg=name
        )
    if expect_launches_below is not None:
        assert len(be.plan_for(feeds).launches) < expect_launches_below


def test_yolov5_megadetector_patterns(cache_dir: Path) -> None:
    """Focus-free v5/v6 blocks: Conv+SiLU, C3 (Concat), SPPF (MaxPool chain), Resize by scales,
    and the detect head: Reshape -> Transpose -> Sigmoid -> Slice/Mul/Pow/Add -> Concat."""
    g = G()
    x = g.silu(g.conv("x", 3, 16, 3, 2))
    a = g.silu(g.conv(x, 16, 8))
    b = g.silu(g.conv(x, 16, 8))
    a2 = g.op("Add", [a, g.silu(g.conv(g.silu(g.conv(a, 8, 8)), 8, 8, 3))])
    c3 = g.silu(g.conv(g.op("Concat", [a2, b], axis=1), 16, 16))
    p1 = g.op("MaxPool", [c3], kernel_shape=[5, 5], pads=[2, 2, 2, 2])
    p2 = g.op("MaxPool", [p1], kernel_shape=[5, 5], pads=[2, 2, 2, 2])
    sppf = g.silu(g.conv(g.op("Concat", [c3, p1, p2], axis=1), 48, 16))
    up = g.op("Resize", [sppf, "", g.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest")
    head = g.conv(
        g.op(
            "Concat",
            [up, g.op("Resize", [c3, "", g.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest")],
            axis=1,
        ),
        32,
        3 * 9,
    )
    r = g.op("Transpose", [g.op("Reshape", [head, g.i64(1, 3, 9, 28, 28)])], perm=[0, 1, 3, 4, 2])
    s = g.op("Sigmoid", [r])
    xy = g.op("Slice", [s, g.i64(0), g.i64(2), g.i64(4)])
    wh = g.op("Slice", [s, g.i64(2), g.i64(4), g.i64(4)])
    rest = g.op("Slice", [s, g.i64(4), g.i64(9), g.i64(4)])
    xy2 = g.op(
        "Mul",
        [
            g.op("Sub", [g.op("Mul", [xy, g.const(np.float32(2))]), g.const(np.float32(0.5))]),
            g.const(np.float32(8)),
        ],
    )
    wh2 = g.op(
        "Mul",
        [
            g.op("Pow", [g.op("Mul", [wh, g.const(np.float32(2))]), g.const(np.float32(2))]),
            g.const(rand(1, 3, 1, 1, 2, seed=3)),
        ],
    )
    out = g.op("Reshape", [g.op("Concat", [xy2, wh2, rest], axis=4), g.i64(1, -1, 9)])
    check(g, {"x": [1, 3, 28, 28]}, [out], cache_dir)


def test_yolov8_patterns(cache_dir: Path) -> None:
    """C2f (Split + Concat), DFL (Reshape/Transpose/Softmax/1x1 Conv), box decode (Sub/Add/Div)."""
    g = G()
    x = g.silu(g.conv("x", 3, 16, 3, 2))
    y0, y1 = g.op("Split", [g.silu(g.conv(x, 16, 16)), g.i64(8, 8)], n_out=2, axis=1)
    y2 = g.silu(g.conv(g.silu(g.conv(y1, 8, 8, 3)), 8, 8, 3))
    c2f = g.silu(g.conv(g.op("Concat", [y0, y1, y2], axis=1), 24, 16))
    box = g.conv(c2f, 16, 64)  # 4 sides x 16 bins
    cls = g.op("Sigmoid", [g.conv(c2f, 16, 5)])
    d = g.op("Reshape", [box, g.i64(1, 4, 16, -1)])
    d = g.op("Softmax", [g.op("Transpose", [d], perm=[0, 2, 1, 3])], axis=1)
    dfl_w = g.const(np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1))
    dist = g.op("Reshape", [g.op("Conv", [d, dfl_w], kernel_shape=[1, 1]), g.i64(1, 4, -1)])
    lt, rb = g.op("Split", [dist, g.i64(2, 2)], n_out=2, axis=1)
    anchors = g.const(rand(1, 2, 196, seed=4, scale=5.0))
    x1y1, x2y2 = g.op("Sub", [anchors, lt]), g.op("Add", [anchors, rb])
    cxy = g.op("Div", [g.op("Add", [x1y1, x2y2]), g.const(np.float32(2))])
    out = g.op("Concat", [cxy, g.op("Sub", [x2y2, x1y1]), g.op("Reshape", [cls, g.i64(1, 5, -1)])], axis=1)
    check(g, {"x": [1, 3, 28, 28]}, [out], cache_dir)


def test_resnet50_patterns(cache_dir: Path) -> None:
    """7x7/2 stem with BatchNormalization, MaxPool, a bottleneck with projection shortcut,
    Add + Relu, GlobalAveragePool, Flatten, Gemm. BN folds into the convs and Add+Relu into
    the last conv's epilogue: far fewer launches than nodes."""
    g = G()
    x = g.op("Relu", [g.bn(g.conv("x", 3, 16, 7, 2, bias=False), 16)])
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    b = g.op("Relu", [g.bn(g.conv(x, 16, 8, bias=False), 8)])
    b = g.op("Relu", [g.bn(g.conv(b, 8, 8, 3, bias=False), 8)])
    b = g.bn(g.conv(b, 8, 32, bias=False), 32)
    sc = g.bn(g.conv(x, 16, 32, bias=False), 32)
    y = g.op("Relu", [g.op("Add", [b, sc])])
    f = g.op("Flatten", [g.op("GlobalAveragePool", [y])])
    out = g.op("Gemm", [f, g.const(rand(10, 32, seed=5)), g.const(rand(10, seed=6))], transB=1)
    check(g, {"x": [2, 3, 33, 33]}, [out], cache_dir, expect_launches_below=10)


def test_efficientnet_b0_patterns(cache_dir: Path) -> None:
    """MBConv: expand Conv+SiLU, asymmetric Pad + depthwise stride 2, squeeze-excitation
    (GlobalAveragePool -> Conv -> SiLU -> Conv -> Sigmoid -> Mul), project conv, residual Add,
    ReduceMean head, MatMul classifier."""
    g = G()
    x = g.silu(g.conv("x", 3, 16, 3, 1))
    e = g.silu(g.conv(x, 16, 32))
    e = g.op("Pad", [e, g.i64(0, 0, 0, 0, 0, 0, 1, 1)], mode="constant")
    d = g.silu(
        g.op(
            "Conv",
            [e, g.const(rand(32, 1, 3, 3, seed=7, scale=0.3))],
            kernel_shape=[3, 3],
            strides=[2, 2],
            group=32,
        )
    )
    se = g.silu(g.conv(g.op("GlobalAveragePool", [d]), 32, 8))
    se = g.op("Sigmoid", [g.conv(se, 8, 32)])
    p = g.conv(g.op("Mul", [d, se]), 32, 16)
    e2 = g.silu(g.conv(p, 16, 32))
    d2 = g.silu(g.conv(e2, 32, 32, 3, g=32))
    se2 = g.op(
        "Sigmoid", [g.conv(g.silu(g.conv(g.op("ReduceMean", [d2], axes=[2, 3], keepdims=1), 32, 8)), 8, 32)]
    )
    p2 = g.op("Add", [p, g.conv(g.op("Mul", [d2, se2]), 32, 16)])
    feat = g.op("Reshape", [g.op("ReduceMean", [p2], axes=[2, 3], keepdims=0), g.i64(-1, 16)])
    out = g.op("MatMul", [feat, g.const(rand(16, 7, seed=8))])
    check(g, {"x": [2, 3, 17, 17]}, [out], cache_dir)


def test_mobilenet_v2_float_patterns(cache_dir: Path) -> None:
    """Conv + Clip(0, 6) (opset 11 min/max inputs), inverted residual with Add, GlobalAveragePool,
    Reshape, Gemm, Softmax."""
    g = G()
    lo, hi = g.const(np.float32(0.0)), g.const(np.float32(6.0))
    x = g.op("Clip", [g.conv("x", 3, 16, 3, 2), lo, hi])
    e = g.op("Clip", [g.conv(x, 16, 48), lo, hi])
    d = g.op("Clip", [g.conv(e, 48, 48, 3, g=48), lo, hi])
    y = g.op("Add", [x, g.conv(d, 48, 16)])
    f = g.op("Reshape", [g.op("GlobalAveragePool", [y]), g.i64(2, -1)])
    out = g.op(
        "Softmax", [g.op("Gemm", [f, g.const(rand(16, 11, seed=9)), g.const(rand(11, seed=3))])], axis=1
    )
    check(g, {"x": [2, 3, 31, 31]}, [out], cache_dir, opset=11, expect_launches_below=9)


def test_shufflenet_channel_shuffle_is_one_strided_copy_per_half(cache_dir: Path) -> None:
    """FastestDet / ShuffleNetV2's shuffle: Reshape -> Transpose -> Reshape -> Gather(0), Gather(1)
    collapses to one strided copy per half (no transpose runs), written into the Concat in place."""
    from yaguar.engine.backends.opencl import OpenCLBackend

    g = G()
    x = g.conv("x", 3, 26, 3)
    t = g.op("Transpose", [g.op("Reshape", [x, g.i64(13, 2, 49)])], perm=[1, 0, 2])
    r = g.op("Reshape", [t, g.i64(2, -1, 13, 7, 7)])
    a = g.op("Gather", [r, g.const(np.array(0, np.int64))], axis=0)
    b = g.op("Gather", [r, g.const(np.array(1, np.int64))], axis=0)
    out = g.op("Concat", [a, g.op("Relu", [g.conv(b, 13, 13, 3)])], axis=1)
    check(g, {"x": [1, 3, 7, 7]}, [out], cache_dir)
    be = OpenCLBackend(model(g.nodes, {"x": [1, 3, 7, 7]}, [out], g.consts), {"cache_dir": cache_dir})
    names = [la.kernel_name for la in be.plan_for({"x": rand(1, 3, 7, 7)}).launches]
    assert "transpose" not in names and names.count("strided_copy") == 2
