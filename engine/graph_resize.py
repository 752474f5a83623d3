"""Running a fixed-shape detector export at another input size, by rewriting its ONNX graph.

The shared exports (YOLOX-nano 416x416, FastestDet 352x352) were traced with one input shape. A
fully convolutional detector works at any size that is a multiple of its largest stride, but the trace
baked sizes into the graph: the input's dims, and Reshape targets such as FastestDet's channel
shuffle ``[24, 2, 1936]`` (1936 = 44 x 44, a feature map's cells). The rewrite sets the new input
size, and maps every Reshape target dim that names a feature-map height, width or cell count at the
native size to the same quantity at the new size. A target dim is read by its position: the last two
dims of a 5-D/4-D target are height and width, a product is the cell count; a dim that could mean two
things (a channel count equal to a feature size) is refused rather than guessed. YOLOv5's head (and
MegaDetector v5's) also flattens anchors x cells (``[1, 3 * 40 * 40, 85]``) and holds each level's cell
grid and anchor grid as constants ``[1, 3, ny, nx, 2]`` traced at the native size: these are laid out
again for the new size (a cell grid's pattern is checked first; any other such constant is refused).

The rewritten model is then checked by running it once on onnxruntime: any size that the graph still
holds elsewhere (a Resize to fixed ``sizes``, an Expand) fails there, and the caller gets one line
saying why and runs the model at its native size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

# Every conv detector here downsamples by at most 32 (YOLOX strides 8/16/32, FastestDet 16 with a 32
# branch): a new size must keep every level's grid whole.
SIZE_MULTIPLE = 32
_LEVELS = 6  # feature-map levels 1/1 .. 1/32


class GraphRewriteError(ValueError):
    """The graph cannot be run at the asked size; the message is one line that says why."""


def _input_dims(model: onnx.ModelProto) -> tuple[onnx.ValueInfoProto, int, int]:
    initialisers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initialisers]
    if len(inputs) != 1:
        raise GraphRewriteError(f"the model has {len(inputs)} inputs; only one image input can be resized")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4 or not all(d.HasField("dim_value") for d in dims[2:]):
        raise GraphRewriteError("the input is not a fixed-size NCHW image")
    return inputs[0], int(dims[2].dim_value), int(dims[3].dim_value)


@dataclass(frozen=True)
class _Sizes:
    """Feature-map heights, widths and cell counts at the native input -> the same levels at the new."""

    heights: dict[int, int]
    widths: dict[int, int]
    cells: dict[int, int]

    @classmethod
    def of(cls, native: tuple[int, int], new: tuple[int, int]) -> _Sizes:
        levels = [lv for lv in range(_LEVELS) if native[0] >> lv > 1 and native[1] >> lv > 1]
        return cls(
            {native[0] >> lv: new[0] >> lv for lv in levels},
            {native[1] >> lv: new[1] >> lv for lv in levels},
            {(native[0] >> lv) * (native[1] >> lv): (new[0] >> lv) * (new[1] >> lv) for lv in levels},
        )


def _new_target(target: list[int], sizes: _Sizes) -> list[int]:
    heights, widths, cells = sizes.heights, sizes.widths, sizes.cells
    rewritten = list(target)
    count = len(target)
    for pos, dim in enumerate(target):
        if dim <= 1:
            continue
        # Position decides which quantity a dim is: the trailing pair of a 4-D+ target is H, W.
        if count >= 4 and pos == count - 1 and dim in widths:
            rewritten[pos] = widths[dim]
        elif count >= 4 and pos == count - 2 and dim in heights:
            rewritten[pos] = heights[dim]
        elif pos == count - 1 and dim in cells:
            rewritten[pos] = cells[dim]
        elif count == 3 and pos == 1 and (per_anchor := _per_anchor(dim, cells)) is not None:
            # YOLOv5's head flattens [1, anchors, ny, nx, outputs] to [1, anchors * ny * nx, outputs]
            rewritten[pos] = per_anchor
        elif dim in heights or dim in widths or dim in cells:
            raise GraphRewriteError(
                f"Reshape target {target}: dim {dim} at position {pos} might be a feature size "
                "but its position does not say which"
            )
    return rewritten


MAX_ANCHORS = 9  # anchors per cell of a YOLO head (YOLOv5: 3)


def _per_anchor(dim: int, cells: dict[int, int]) -> int | None:
    """``dim`` as anchors x the cells of one feature level (at most MAX_ANCHORS anchors, one way only)
    -> the same count at the new size; None when it is not one."""
    found = [
        anchors * new
        for native, new in cells.items()
        for anchors in range(2, MAX_ANCHORS + 1)
        if dim == anchors * native
    ]
    return found[0] if len(found) == 1 else None


def _grid(value: np.ndarray, height: int, width: int) -> np.ndarray:
    """A YOLO head's constant [1, anchors, ny, nx, 2] at a new ny, nx: an anchor grid (the same pair at
    every cell) is repeated, a cell grid (x*s + c, y*s + c) is laid out again; GraphRewriteError for
    anything else."""
    first = value[:, :, :1, :1, :]
    if np.array_equal(value, np.broadcast_to(first, value.shape)):
        return np.ascontiguousarray(np.broadcast_to(first, (*value.shape[:2], height, width, 2)))
    step = float(value[0, 0, 0, 1, 0] - value[0, 0, 0, 0, 0]) if value.shape[3] > 1 else 1.0
    offset = value[:, :, :1, :1, :]
    ys, xs = np.meshgrid(np.arange(value.shape[2]), np.arange(value.shape[3]), indexing="ij")
    layout = np.stack([xs, ys], -1)[None, None] * step
    if not np.allclose(value, layout + offset, atol=1e-5):
        raise GraphRewriteError(
            f"a constant of shape {list(value.shape)} is neither a cell grid nor an anchor grid"
        )
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    grid = np.stack([xs, ys], -1)[None, None] * step + offset
    return np.ascontiguousarray(grid.astype(value.dtype))


def _rewrite_grids(
    constants: dict[str, onnx.TensorProto], native: tuple[int, int], new: tuple[int, int]
) -> None:
    """The constant grids of a YOLOv5 head (cell offsets and anchor sizes per feature-map cell, traced at
    the native size) laid out for the new size, in place."""
    levels = {(native[0] >> lv, native[1] >> lv): (new[0] >> lv, new[1] >> lv) for lv in range(_LEVELS)}
    for tensor in constants.values():
        dims = list(tensor.dims)
        if len(dims) == 5 and dims[4] == 2 and (dims[2], dims[3]) in levels and dims[2] * dims[3] > 1:
            height, width = levels[(dims[2], dims[3])]
            grid = _grid(numpy_helper.to_array(tensor), height, width)
            tensor.CopyFrom(numpy_helper.from_array(grid, tensor.name))


def rewrite_input_size(model: onnx.ModelProto, width: int, height: int) -> onnx.ModelProto:
    """A copy of ``model`` whose input is ``height`` x ``width``; GraphRewriteError when it cannot be."""
    if width % SIZE_MULTIPLE or height % SIZE_MULTIPLE:
        raise GraphRewriteError(f"{width}x{height} is not a multiple of {SIZE_MULTIPLE}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    image, native_h, native_w = _input_dims(out)
    if native_h % SIZE_MULTIPLE or native_w % SIZE_MULTIPLE:
        raise GraphRewriteError(f"the native size {native_w}x{native_h} is not a multiple of {SIZE_MULTIPLE}")
    sizes = _Sizes.of((native_h, native_w), (height, width))
    dims = image.type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = height, width
    constants = {t.name: t for t in out.graph.initializer}
    for node in out.graph.node:
        if node.op_type == "Constant":
            constants.update({o: a.t for o in node.output for a in node.attribute if a.name == "value"})
    for node in out.graph.node:
        if node.op_type == "Reshape" and len(node.input) > 1:
            tensor = constants.get(node.input[1])
            if tensor is None:
                continue  # computed from Shape: it follows the input by itself
            target = [int(v) for v in numpy_helper.to_array(tensor).reshape(-1)]
            new = _new_target(target, sizes)
            if new != target:
                tensor.CopyFrom(numpy_helper.from_array(np.asarray(new, dtype=np.int64), tensor.name))
        elif node.op_type == "Resize" and len(node.input) > 3 and node.input[3] in constants:
            raise GraphRewriteError(f"Resize node {node.name or node.output[0]!r} has fixed output sizes")
    _rewrite_grids(constants, (native_h, native_w), (height, width))
    # Shapes recorded for the native size would contradict the new ones: let the runtimes infer them.
    del out.graph.value_info[:]
    for output in out.graph.output:
        output.type.tensor_type.ClearField("shape")
    return out


def check_runs(model: onnx.ModelProto, width: int, height: int) -> list[tuple[int, ...]]:
    """Run the rewritten model once on zeros (onnxruntime); its output shapes, or GraphRewriteError."""
    import onnxruntime as ort  # the station's backend; imported here so the rewrite alone needs onnx only

    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0]
        outputs = session.run(None, {feed.name: np.zeros((1, 3, height, width), np.float32)})
    except Exception as exc:  # onnxruntime's untyped errors: the one line is what matters
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GraphRewriteError(
            f"the rewritten graph does not run at {width}x{height}: {first[:160]}"
        ) from None
    return [tuple(o.shape) for o in outputs]


def resized_model(path: Path, width: int, height: int) -> onnx.ModelProto:
    """The model file at ``path``, rewritten to ``width`` x ``height`` and checked to run there."""
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError for bad files
        raise GraphRewriteError(f"cannot read {Path(path).name}: {str(exc)[:160]}") from None
    resized = rewrite_input_size(model, width, height)
    check_runs(resized, width, height)
    return resized
