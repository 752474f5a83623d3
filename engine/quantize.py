"""Post-training quantisation of a detector: onnxruntime's static quantisation (QDQ, int8 weights per
output channel, uint8 activations), calibrated on real camera-trap frames, scored against a reference
before anything is written, and refused with the numbers when recall drops more than the tolerance.

The reference is MegaDetector v5's own boxes (``reference/megadetector_v5_boxes.json`` of the shared
data) where its frames are at hand, else the float model's own detections on the calibration frames.
A frame counts as found when the model has a box of the same category overlapping one of the
reference's boxes (IoU >= 0.3, as bench/quality.py scores). The result is one ONNX file, its
manifest (labels inline, so it works from any folder) and a model card, written whole or not at all
(``atomic_write``), the manifest last.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from yaguar.durable import atomic_write

from .decode import DecodeError, read_image
from .detector import Detection, Detector
from .int8_manifest import int8_copy, int8_written, manifest_toml
from .manifest import Manifest
from .postprocess import iou_xywh
from .preprocess import fit, to_tensor
from .quantize_layout import for_onnxruntime
from .quantize_silu import (
    CONV_ONLY,
    MIN_STEPS_SILU,
    SILU_INT8_OPS,
    float_neighbours,
    silu_input_ranges,
    silu_pairs,
)

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg"}  # what camera traps write; the decode path is the station's (libjpeg)
MATCH_IOU = 0.3
QDQ_OPSET = 13  # per-channel DequantizeLinear (its axis attribute) needs opset 13
MIN_STEPS = 3.0  # a conv input whose channels mostly span fewer uint8 steps than this stays float
# Only convs run in int8 by default: the OpenCL backend's int8 kernels match onnxruntime on that graph.
# Sigmoid and SiLU's Mul in int8 as well (``--silu-int8``, quantize_silu.py) is faster on onnxruntime.
INT8_OPS = CONV_ONLY
STAT_FRAMES = 16  # calibration frames used for the per-channel activation statistics


class QuantizeError(RuntimeError):
    """Quantisation could not run or its result was refused; the message is one line with the numbers."""


@dataclass(frozen=True)
class Score:
    """Recall of the reference's frames (and boxes) by one model, and its speed on onnxruntime."""

    frames: int  # reference frames with at least one box
    found: int  # of those, frames where the model has a matching box
    boxes: int
    boxes_found: int
    false_frames: int  # reference frames without boxes where the model reports something
    blank_frames: int

    @property
    def recall(self) -> float:
        return self.found / self.frames if self.frames else 0.0


@dataclass(frozen=True)
class Result:
    manifest: Manifest
    model: Path
    card: Path
    float_score: Score
    int8_score: Score
    float_ms: float  # median ms of one inference on onnxruntime, the two models timed in turn
    int8_ms: float
    reference: str
    float_convs: list[str]  # convs kept in float (see ``float_convs``)
    silu_int8: bool = False  # Sigmoid and SiLU's Mul quantised too (quantize_silu.py)


def calibration_frames(folders: list[Path], max_frames: int, min_side: int) -> list[np.ndarray]:
    """Decoded BGR frames of ``folders`` (see ``calibration_images``)."""
    return [frame for _, frame in calibration_images(folders, max_frames, min_side)]


def calibration_images(folders: list[Path], max_frames: int, min_side: int) -> list[tuple[Path, np.ndarray]]:
    """Decoded BGR frames of ``folders`` with their files (sorted by name, at most ``max_frames``);
    a file that is not a JPEG or does not decode is skipped. No usable image at all is an error that
    says why."""
    files: list[Path] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise QuantizeError(f"calibration folder {folder} does not exist")
        files += sorted(p for p in folder.rglob("*") if p.is_file())
    frames: list[tuple[Path, np.ndarray]] = []
    skipped: dict[str, int] = {}
    for path in files:
        if len(frames) >= max_frames:
            break
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped["not a JPEG"] = skipped.get("not a JPEG", 0) + 1
            continue
        try:
            frames.append((path, read_image(path, min_side=min_side).pixels))
        except DecodeError as exc:
            skipped[exc.reason] = skipped.get(exc.reason, 0) + 1
    if not frames:
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items())) or "it is empty"
        where = ", ".join(str(f) for f in folders)
        raise QuantizeError(f"calibration folder {where} has no usable image ({why})")
    return frames


class _Frames(CalibrationDataReader):
    """Feeds the calibration frames (preprocessed as the station does) to onnxruntime's calibrator."""

    def __init__(self, tensors: list[np.ndarray], input_name: str) -> None:
        self._items = iter(tensors)
        self._input = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        tensor = next(self._items, None)
        return None if tensor is None else {self._input: tensor}


def already_int8(model: onnx.ModelProto) -> list[str]:
    """Nodes whose weights are already int8 (read through a DequantizeLinear): a pre-quantised
    backbone, such as the one a trained classifier's head sits on, stays as it is."""
    stored = {i.name for i in model.graph.initializer}
    dequantized = {
        o
        for n in model.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in stored
        for o in n.output
    }
    return [n.name for n in model.graph.node if len(n.input) > 1 and n.input[1] in dequantized]


def prepared(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` as it is quantised: opset raised to 13 where needed, then onnxruntime's
    pre-processing (shape inference, graph optimisation: BatchNorm folded into the convs before their
    weights are quantised; without it FastestDet's int8 copy ran far slower than the float one)."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), QDQ_OPSET)
    if opset < QDQ_OPSET:
        model = onnx.version_converter.convert_version(model, QDQ_OPSET)
    with tempfile.TemporaryDirectory() as tmp:
        raised, pre = Path(tmp) / "opset.onnx", Path(tmp) / "pre.onnx"
        onnx.save(model, str(raised))
        quant_pre_process(str(raised), str(pre), skip_symbolic_shape=True)
        return onnx.load(str(pre))


def quantize_file(
    model: onnx.ModelProto,
    dst: Path,
    tensors: list[np.ndarray],
    input_name: str,
    op_types: list[str] = INT8_OPS,
    percentile: float | None = None,
) -> list[str]:
    """Static QDQ quantisation of the float ``model`` into ``dst`` (the caller loads it, once, and may
    check it first): opset raised to 13 where needed, onnxruntime's pre-processing (shape inference,
    graph optimisation), MinMax calibration on ``tensors`` (model inputs, preprocessed as the model's
    runner does), or ranges that leave out the values beyond ``percentile``. ``op_types`` run in int8,
    except the convs that int8 would break (``float_convs``: they stay float, their names returned) and
    the nodes that are int8 already; with Sigmoid and Mul among them, the nodes around the SiLUs stay
    float too (``float_neighbours``) and a SiLU's input is quantised without the tail that SiLU rounds
    to 0 (``silu_input_ranges``), the stem is one conv and the head's rows are made channels-last
    (``for_onnxruntime``: no SpaceToDepth, which onnxruntime runs only in float, and no layout
    Transposes in the head) and only convs whose input channels span under ``MIN_STEPS_SILU``
    uint8 steps stay float."""
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        silu_int8 = bool({"Sigmoid", "Mul"} & set(op_types))
        graph = prepared(model)
        if silu_int8:  # the graph onnxruntime runs fastest (quantize_layout.py), exact in float
            graph = for_onnxruntime(graph)
        onnx.save(graph, str(pre))
        steps = MIN_STEPS_SILU if silu_int8 else MIN_STEPS
        keep = float_convs(graph, input_name, tensors[:STAT_FRAMES], steps)
        exclude = keep + already_int8(graph)
        extra: dict[str, object] = {"CalibPercentile": percentile} if percentile is not None else {}
        pairs = silu_pairs(graph)
        if silu_int8:  # the SiLUs in int8 (quantize_silu.py)
            exclude += float_neighbours(graph, keep)
            if percentile is None and pairs:
                names = sorted(set(pairs) | set(pairs.values()))
                low, high = tensor_ranges(graph, input_name, tensors, names)
                extra["TensorQuantOverrides"] = silu_input_ranges(pairs, low, high)
        quantize_static(
            str(pre),
            str(dst),
            _Frames(tensors, input_name),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax if percentile is None else CalibrationMethod.Percentile,
            extra_options=extra,
            op_types_to_quantize=op_types,
            nodes_to_exclude=exclude,
        )
    return keep


def probed(
    model: onnx.ModelProto, input_name: str, tensors: list[np.ndarray], names: list[str]
) -> Iterator[dict[str, np.ndarray]]:
    """Per tensor of ``tensors``, the values of the intermediate tensors ``names`` in the float
    ``model`` (run on onnxruntime with them as extra outputs)."""
    augmented = onnx.ModelProto()
    augmented.CopyFrom(model)
    augmented.graph.output.extend(
        onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in names
    )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(augmented.SerializeToString(), options, providers=["CPUExecutionProvider"])
    for tensor in tensors:
        yield dict(zip(names, session.run(names, {input_name: tensor}), strict=True))


def tensor_ranges(
    model: onnx.ModelProto, input_name: str, tensors: list[np.ndarray], names: list[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """Minimum and maximum of each of ``names`` over ``tensors``, 0 included (as onnxruntime's MinMax
    calibration takes them)."""
    low = dict.fromkeys(names, 0.0)
    high = dict.fromkeys(names, 0.0)
    for values in probed(model, input_name, tensors, names):
        for name, value in values.items():
            low[name] = min(low[name], float(value.min()))
            high[name] = max(high[name], float(value.max()))
    return low, high


def float_convs(
    model: onnx.ModelProto, input_name: str, tensors: list[np.ndarray], min_steps: float = MIN_STEPS
) -> list[str]:
    """Convs that stay float, measured on the float model's activations:

    - the stem, the convs with no conv before them: they read raw pixels (0..255 for YOLOX), whose
      large common level cancels in the sum, so int8 weights' rounding swamps the small result
      (YOLOX-nano's stem alone drops its recall from 10/19 to 4/19 frames);
    - convs whose input activation has most of its channels within a few uint8 steps: one scale
      per tensor must cover the widest channel, and a channel whose values span under
      ``min_steps`` steps (its 10th-percentile RMS, over the tensor's step) is mostly rounding.
    """
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    made_by_conv = {o for n in convs for o in n.output}
    producer = {o: n for n in model.graph.node for o in n.output}

    def after_conv(tensor: str, seen: set[str]) -> bool:
        node = producer.get(tensor)
        if node is None or tensor in seen:
            return False
        seen.add(tensor)
        return tensor in made_by_conv or any(after_conv(t, seen) for t in node.input)

    keep = [n.name for n in convs if not after_conv(n.input[0], set())]
    inputs = sorted(
        {n.input[0] for n in convs if n.input[0] != input_name} - {i.name for i in model.graph.initializer}
    )
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    power: dict[str, np.ndarray] = {}  # mean square per input channel, over the calibration frames
    for values in probed(model, input_name, tensors, inputs):
        for name, value in values.items():
            low[name] = min(low.get(name, 0.0), float(value.min()))
            high[name] = max(high.get(name, 0.0), float(value.max()))
            channel_power = (value.astype(np.float64) ** 2).mean(axis=(0, 2, 3)) / len(tensors)
            power[name] = power[name] + channel_power if name in power else channel_power
    for n in convs:
        name = n.input[0]
        if name in power and n.name not in keep:
            step = (high[name] - low[name]) / 255 or 1.0
            if np.percentile(np.sqrt(power[name]), 10) / step < min_steps:
                keep.append(n.name)
    log.info("int8: %d of %d convs stay float (%s)", len(keep), len(convs), ", ".join(keep))
    return keep


def load_reference(path: Path | None, images: Path | None) -> tuple[dict[Path, list[dict]], str] | None:
    """MegaDetector-format boxes {image name: [{category, bbox}]} resolved to files under ``images``
    (searched recursively by name); None when there is no reference or none of its images is there."""
    if path is None or images is None or not Path(path).is_file():
        return None
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    by_name = {p.name: p for p in Path(images).rglob("*") if p.is_file()}
    boxes = {by_name[name]: found for name, found in data.get("images", {}).items() if name in by_name}
    return (boxes, f"MegaDetector's boxes ({Path(path).name}, {len(boxes)} frames)") if boxes else None


def _matches(found: list[Detection], wanted: dict) -> bool:
    return any(
        d.category == wanted["category"] and iou_xywh(d.bbox, wanted["bbox"]) >= MATCH_IOU for d in found
    )


def score(detector: Detector, frames: list[np.ndarray], reference: list[list[dict]]) -> Score:
    """Recall of ``reference`` (per frame, the boxes expected on it) by ``detector`` on ``frames``."""
    found = boxes_found = false_frames = 0
    for frame, wanted in zip(frames, reference, strict=True):
        detections = detector.detect([frame])[0]
        if not wanted:
            false_frames += bool(detections)
            continue
        hits = [_matches(detections, w) for w in wanted]
        found += any(hits)
        boxes_found += sum(hits)
    with_boxes = sum(1 for w in reference if w)
    return Score(
        frames=with_boxes,
        found=found,
        boxes=sum(len(w) for w in reference),
        boxes_found=boxes_found,
        false_frames=false_frames,
        blank_frames=len(reference) - with_boxes,
    )


def speed(detectors: list[Detector], frame: np.ndarray, rounds: int = 15) -> list[float]:
    """Median milliseconds of one inference of each detector on the same input (``timed_in_turn``)."""
    feeds = [
        {d.input_name: to_tensor([fit(frame, d.manifest.input)[0]], d.manifest.input)} for d in detectors
    ]
    return timed_in_turn([partial(d.backend.run, f) for d, f in zip(detectors, feeds, strict=True)], rounds)


def timed_in_turn(runs: list[Callable[[], object]], rounds: int = 15, per_turn: int = 1) -> list[float]:
    """Median milliseconds of each call, the calls timed in turn round after round, so that a busy
    machine slows them alike. ``per_turn`` > 1: each call that many times in a row per round, the
    first of each row not counted (onnxruntime's default threads spin on after a run, and would slow
    the other session's first run)."""
    times: list[list[float]] = [[] for _ in runs]
    for round_ in range(rounds + 1):  # the first round warms up
        for i, run in enumerate(runs):
            for repeat in range(per_turn):
                start = time.perf_counter()
                run()
                if round_ and (repeat or per_turn == 1):
                    times[i].append(time.perf_counter() - start)
    return [statistics.median(t) * 1000 for t in times]


def quantize_detector(
    manifest: Manifest,
    model_dir: Path,
    calibration: list[Path],
    out_dir: Path,
    reference: Path | None = None,
    reference_images: Path | None = None,
    tolerance: float = 0.02,
    max_frames: int = 64,
    silu_int8: bool = False,
    tuned: onnx.ModelProto | None = None,
) -> Result:
    """Quantise ``manifest``'s detector, score float and int8 on the same frames, and write the int8
    model, its manifest and its card into ``out_dir``; QuantizeError (nothing written) when the
    recall drops by more than ``tolerance``. ``silu_int8``: the SiLUs in int8 too (quantize_silu.py).
    ``tuned``: the float model with weights fine-tuned for int8 (quantize_finetune.py), quantised
    instead of the manifest's file and scored against the manifest's float model."""
    if manifest.kind != "detector":
        raise QuantizeError(f"{manifest.ident} is a {manifest.kind}; only detectors are quantised here")
    options = {"threads": os.cpu_count() or 1, "allow_spinning": False}  # the station's settings
    float_det = Detector(manifest, model_dir, "onnxruntime", options)
    frames = calibration_frames(calibration, max_frames, float_det.min_side)
    name = f"{manifest.name}_int8"
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / f"{name}.onnx"
        tensors = [to_tensor([fit(f, manifest.input)[0]], manifest.input) for f in frames]
        float_model = tuned if tuned is not None else onnx.load(str(manifest.model_path(model_dir)))
        op_types = SILU_INT8_OPS if silu_int8 else INT8_OPS
        kept = quantize_file(float_model, candidate, tensors, float_det.input_name, op_types)
        int8_manifest = int8_copy(manifest, candidate.name, float_det.labels)
        int8_det = Detector(int8_manifest, Path(tmp), "onnxruntime", options, verify_sha256=False)
        ref = load_reference(reference, reference_images)
        if ref is not None:
            eval_frames = [read_image(p, min_side=float_det.min_side).pixels for p in ref[0]]
            wanted, described = list(ref[0].values()), ref[1]
        else:  # the float model's own boxes are the reference
            eval_frames = frames
            wanted = [[{"category": d.category, "bbox": d.bbox} for d in f] for f in float_det.detect(frames)]
            described = f"the float model's own detections on the {len(frames)} calibration frames"
        float_score, int8_score = score(float_det, eval_frames, wanted), score(int8_det, eval_frames, wanted)
        float_ms, int8_ms = speed([float_det, int8_det], frames[0])
        drop = float_score.recall - int8_score.recall
        numbers = (
            f"recall {int8_score.found}/{int8_score.frames} = {int8_score.recall:.3f} against float "
            f"{float_score.found}/{float_score.frames} = {float_score.recall:.3f} on {described}"
        )
        if drop > tolerance:
            raise QuantizeError(f"{manifest.ident}: int8 refused, {numbers}: drop {drop:.3f} > {tolerance}")
        out_dir.mkdir(parents=True, exist_ok=True)
        model_path, card_path = out_dir / candidate.name, out_dir / f"{name}.card.md"
        atomic_write(model_path, candidate.read_bytes())
    final = int8_written(
        int8_manifest, manifest, model_path, calibration, " --silu-int8" if silu_int8 else ""
    )
    result = Result(
        final, model_path, card_path, float_score, int8_score, float_ms, int8_ms, described, kept, silu_int8
    )
    atomic_write(card_path, card(result, manifest, calibration, len(frames)))
    toml_path = out_dir / f"{name}.toml"
    atomic_write(toml_path, manifest_toml(final).encode())
    return result


def _row(label: str, s: Score, ms: float) -> str:
    return (
        f"| {label} | {s.found}/{s.frames} = {s.recall:.3f} | {s.boxes_found}/{s.boxes} | "
        f"{s.false_frames}/{s.blank_frames} | {ms:.1f} |"
    )


def card(r: Result, source: Manifest, calibration: list[Path], frames: int) -> bytes:
    m = r.manifest
    return "\n".join(
        [
            f"# {m.ident}: {source.ident} in int8",
            "",
            f"Made by `yaguar models quantize` on {datetime.now(UTC).isoformat(timespec='seconds')}:",
            "onnxruntime static quantisation, QDQ format, int8 weights per output channel, uint8",
            f"activations with MinMax ranges from {frames} frames of {', '.join(f'`{c!s}`' for c in calibration)}.",
            f"{len(r.float_convs)} convs stay float (the stem, and inputs whose channels span under",
            f"{MIN_STEPS_SILU if r.silu_int8 else MIN_STEPS:g} uint8 steps): {', '.join(r.float_convs) or 'none'}. "
            + (
                "Sigmoid, SiLU's Mul, Concat, Add, MaxPool and Resize are int8 too (`--silu-int8`: faster"
                " on onnxruntime; the OpenCL int8 kernels do not match onnxruntime on this graph), a"
                " SiLU's input is quantised without the negative tail that SiLU rounds to 0, and a"
                " SpaceToDepth stem is one strided conv (the same sums)."
                if r.silu_int8
                else "Only the convs are int8."
            ),
            "",
            f"Scored on {r.reference}; a frame is found when the model has a box of the same",
            f"category with IoU >= {MATCH_IOU} to a reference box. Milliseconds: one inference on",
            f"onnxruntime on this machine's CPU ({os.cpu_count()} cores, the station's session options),",
            "median, the two models timed in turn.",
            "",
            "| model | frames found | boxes found | blank frames with a detection | ms per inference |",
            "|---|---|---|---|---|",
            _row(f"float `{source.file}`", r.float_score, r.float_ms),
            _row(f"int8 `{m.file}`", r.int8_score, r.int8_ms),
            "",
            f"Speed on onnxruntime: {r.float_ms / r.int8_ms:.2f}x the float model's. "
            f"sha256 of the int8 file: `{m.sha256}`.",
            "",
        ]
    ).encode()
