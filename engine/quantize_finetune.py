"""Quantisation-aware fine-tuning of a detector by distillation (``yaguar models quantize --finetune``).

Post-training quantisation alone loses YOLOX-nano two of the yardstick's 14 frames, and the loss is
spread over every layer (engine/README.md). Here the float model teaches its own int8 copy, with no
labels: the QDQ graph that ``quantize_file`` makes is run by torch (``torch_graph``) with its
Quantize/DequantizeLinear pairs as fake quantisation, and its float weights are trained so that its
raw outputs match the float model's on the same frames, objectness everywhere and the classes and box
where the float model sees something. The trained float weights go back into the float graph, which
``quantize_file`` then quantises as usual: the result is an ordinary QDQ model.

The frames are a user's own photos (``--finetune FOLDER``: never the frames the model is scored on),
decoded as the station decodes them and varied at every step: a random crop, a mirror image,
brightness and contrast, grey (like infrared), and the input sizes the station feeds.

Measured (engine/README.md, "Fine-tuned for int8"): on 18-19 photos it lowers the int8 error on the
photos it trained on, but not on others, and the yardstick's recall stayed 11-13 of float's 14; so it
is opt-in.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnx.version_converter
import torch
from onnx import numpy_helper
from tqdm import tqdm

from .manifest import InputSpec, Manifest
from .preprocess import fit, to_tensor
from .quantize import QuantizeError, calibration_frames, calibration_images, prepared, quantize_file
from .quantize_silu import CONV_ONLY, SILU_INT8_OPS
from .torch_graph import TorchGraph

log = logging.getLogger(__name__)
# input sizes (width, height): the station's first pass (416 fitted to a 4:3 frame), its closer look
# (832x640) and sizes between; a batch holds about BATCH_PIXELS, so each step costs about the same
SIZES = [(416, 320), (416, 416), (320, 256), (512, 384), (640, 480), (832, 640)]
BATCH_PIXELS = 4 * 416 * 320
REQUANTISE = 50  # steps between calibrations of the fake quantisation's ranges
MAX_STEPS = 2000  # ``yaguar models quantize --finetune`` stops here or at --finetune-minutes
LEARNING_RATE = 2e-3  # per step, in units of each weight's int8 step (torch_graph)
GREY = 0.3  # share of training frames made grey, as an infrared camera sees at night
SEEN = 0.1  # a float score over this marks an anchor where the float model sees something
TRAIN_SIDE = 832  # frames are decoded to at least this side: crops still fill the largest input


@dataclass(frozen=True)
class Tuned:
    """The float model with weights fine-tuned for int8, and what the training saw and did."""

    model: onnx.ModelProto
    frames: list[Path]
    steps: int
    seconds: float
    error_before: float  # ``output_error`` of the fake-quant model on the training frames, as they are
    error_after: float


def with_weights(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of ``model`` whose initializers named in ``weights`` hold those values."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        if init.name in weights:
            init.CopyFrom(numpy_helper.from_array(weights[init.name].astype(np.float32), init.name))
    return out


def varied(frame: np.ndarray, rng: random.Random) -> np.ndarray:
    """A random crop (30-100 % of the area), maybe mirrored, its brightness and contrast changed,
    and maybe grey."""
    h, w = frame.shape[:2]
    area = rng.uniform(0.3, 1.0)
    aspect = rng.uniform(0.75, 1.33)
    cw, ch = min(w, round(w * (area * aspect) ** 0.5)), min(h, round(h * (area / aspect) ** 0.5))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    out = frame[y : y + ch, x : x + cw]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = cv2.convertScaleAbs(out, alpha=rng.uniform(0.6, 1.4), beta=rng.uniform(-40, 40))
    if rng.random() < GREY:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(out)


def batch(frames: list[np.ndarray], spec: InputSpec, size: tuple[int, int]) -> torch.Tensor:
    """``frames`` fitted to ``size`` (width, height) as the station fits them, as one input tensor."""
    sized = spec.model_copy(update={"width": size[0], "height": size[1]})
    return torch.from_numpy(to_tensor([fit(f, sized)[0] for f in frames], sized))


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """How far the int8 copy's raw YOLOX outputs [N, anchors, 4 box + objectness + classes] are from
    the float model's: objectness at every anchor (cross-entropy against the float probability), and
    weighted by the float objectness, the class probabilities and the box (raw offsets and log sizes)."""
    eps = 1e-6
    obj_s, obj_t = student[..., 4].clamp(eps, 1 - eps), teacher[..., 4]
    objectness = torch.nn.functional.binary_cross_entropy(obj_s, obj_t)
    weight = obj_t / obj_t.sum().clamp_min(eps)
    classes = torch.nn.functional.binary_cross_entropy(
        student[..., 5:].clamp(eps, 1 - eps), teacher[..., 5:], reduction="none"
    ).mean(-1)
    box = torch.nn.functional.smooth_l1_loss(student[..., :4], teacher[..., :4], reduction="none").mean(-1)
    return objectness + (weight * (classes + box)).sum()


def score_error(student: np.ndarray, teacher: np.ndarray) -> float:
    """Mean |score difference| (objectness x best class) where the float model's score is over
    ``SEEN``: how far int8 moves the scores that decide what is found (0 when nothing is seen)."""
    s_score = student[..., 4] * student[..., 5:].max(-1)
    t_score = teacher[..., 4] * teacher[..., 5:].max(-1)
    seen = t_score > SEEN
    return float(np.abs(s_score - t_score)[seen].mean()) if seen.any() else 0.0


def output_error(student: TorchGraph, teacher: TorchGraph, tensors: list[torch.Tensor]) -> float:
    """``distillation_loss`` averaged over ``tensors`` (each one input), without training."""
    with torch.no_grad():
        return float(np.mean([distillation_loss(student(t), teacher(t)).item() for t in tensors]))


def finetune(
    model: onnx.ModelProto,
    spec: InputSpec,
    calibration: list[np.ndarray],
    training: list[Path],
    steps: int,
    op_types: list[str],
    max_frames: int = 64,
    minutes: float | None = None,
    seed: int = 0,
) -> Tuned:
    """``model`` (float) with its weights fine-tuned so that its int8 copy (quantised by
    ``quantize_file`` with ``op_types`` on the ``calibration`` frames, decoded BGR) answers as the
    float model does on the photos of the ``training`` folders: ``steps`` steps of varied frames
    (``BATCH_PIXELS`` a step), or fewer if ``minutes`` run out. A training folder without a usable image is refused."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    try:
        found = calibration_images(training, max_frames, TRAIN_SIDE)
    except QuantizeError as exc:
        raise QuantizeError(f"--finetune: {exc}".replace("calibration folder", "training folder")) from exc
    files, frames = [p for p, _ in found], [f for _, f in found]
    float_graph = prepared(model)
    tensors = [to_tensor([fit(f, spec)[0]], spec) for f in calibration]
    float_names = {i.name for i in float_graph.graph.initializer}

    def quantised(weights: dict[str, np.ndarray]) -> TorchGraph:
        """The int8 copy of the float graph with ``weights``, as ``quantize_file`` makes it (its
        ranges calibrated anew: they follow the weights), run by torch with fake quantisation."""
        with tempfile.TemporaryDirectory() as tmp:
            tuned = with_weights(float_graph, weights)
            quantize_file(tuned, Path(tmp) / "q.onnx", tensors, float_graph.graph.input[0].name, op_types)
            student = TorchGraph(onnx.load(str(Path(tmp) / "q.onnx")), weights)
        for key, name in student.names.items():  # a weight the rewrites made (the --silu-int8 stem)
            student.params[key].requires_grad_(name in float_names)  # is made anew from the float one
        return student

    weights = {
        i.name: numpy_helper.to_array(i)
        for i in float_graph.graph.initializer
        if i.data_type == onnx.TensorProto.FLOAT
    }
    teacher, student = TorchGraph(float_graph).eval(), quantised(weights)
    teacher.requires_grad_(False)
    plain = [batch([f], spec, (spec.width, spec.height)) for f in frames]
    before = output_error(student, teacher, plain)
    optimiser = torch.optim.Adam(trainable(student), lr=LEARNING_RATE)
    began, done = time.monotonic(), 0
    for _ in tqdm(range(steps), desc="fine-tuning for int8", unit="step", leave=False):
        size = rng.choice(SIZES)
        count = max(1, round(BATCH_PIXELS / (size[0] * size[1])))
        inputs = batch([varied(rng.choice(frames), rng) for _ in range(count)], spec, size)
        with torch.no_grad():
            wanted = teacher(inputs)
        loss = distillation_loss(student(inputs), wanted)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        done += 1
        if minutes is not None and time.monotonic() - began > minutes * 60:
            break
        if done % REQUANTISE == 0:  # the ranges (and the convs kept float) as the weights now give them
            student = quantised(student.trained())
            optimiser = torch.optim.Adam(trainable(student), lr=LEARNING_RATE)
    weights = {name: value for name, value in student.trained().items() if name in float_names}
    after = output_error(quantised(weights), teacher, plain)  # as it will be quantised
    seconds = time.monotonic() - began
    log.info("int8 fine-tuning: %d steps in %.0f s, error %.4f -> %.4f", done, seconds, before, after)
    return Tuned(with_weights(float_graph, weights), files, done, seconds, before, after)


def trainable(student: TorchGraph) -> list[torch.nn.Parameter]:
    return [p for p in student.parameters() if p.requires_grad]


def finetuned(
    manifest: Manifest,
    model_dir: Path,
    calibration: list[Path],
    training: list[Path],
    max_frames: int,
    silu_int8: bool,
    minutes: float,
) -> Tuned:
    """``manifest``'s detector fine-tuned for the int8 copy that ``quantize_detector`` makes with the
    same ``calibration`` folders and ``silu_int8``, for at most ``minutes`` (``finetune``)."""
    frames = calibration_frames(calibration, max_frames, max(manifest.input.width, manifest.input.height))
    model = onnx.load(str(manifest.model_path(model_dir)))
    op_types = SILU_INT8_OPS if silu_int8 else CONV_ONLY
    return finetune(model, manifest.input, frames, training, MAX_STEPS, op_types, max_frames, minutes)


def card_note(tuned: Tuned, training: list[Path]) -> str:
    """What the fine-tuning saw and did, for the model card."""
    return "\n".join(
        [
            "## Fine-tuned for int8 (`--finetune`)",
            "",
            "Before quantising, the float weights were fine-tuned so that the int8 copy's raw outputs match",
            "the float model's (distillation, no labels; the QDQ graph run by torch with fake quantisation).",
            f"Training saw {len(tuned.frames)} photos of {', '.join(f'`{t!s}`' for t in training)}, varied at",
            f"every step (crops, mirror, brightness, grey, input sizes {', '.join(f'{w}x{h}' for w, h in SIZES)}):",
            f"{tuned.steps} steps in {tuned.seconds:.0f} s. The fake-quant model's distillation loss on those",
            f"photos went from {tuned.error_before:.4f} to {tuned.error_after:.4f}.",
            "",
        ]
    )
