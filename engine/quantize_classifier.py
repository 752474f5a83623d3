"""Post-training quantisation of a species classifier: the same onnxruntime static quantisation as the
detectors' (``quantize.quantize_file``: QDQ, int8 weights per output channel, uint8 activations), on
the float Conv, Gemm and MatMul nodes. A trained classifier's backbone is int8 already, so there it is
its species head that becomes int8; a float classifier becomes int8 throughout.

The folder's photos are split in turn: the even ones (by name) calibrate, the odd ones are held out to
score the copy against the float model. Both see each photo as the station's classifier does
(``Classifier.tensor``). The copy is kept only if its top-1 class agrees with the float model's on all
but ``tolerance`` of the held-out photos, and, where a photo's folder names one of the model's species
(a training folder), its accuracy drops by no more than ``tolerance``; otherwise it is refused with the
numbers. The result is one ONNX file, its manifest (labels inline) and a model card, the manifest last.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from yaguar.durable import atomic_write

from .classifier import Classifier, Guess
from .int8_manifest import int8_copy, int8_written, manifest_toml
from .labelmap import species_of
from .manifest import Manifest
from .quantize import (
    MIN_STEPS,
    QuantizeError,
    already_int8,
    calibration_images,
    quantize_file,
    timed_in_turn,
)
from .training.crops import Cropper
from .training.taxa import NotATaxonError, resolve

INT8_OPS = ["Conv", "Gemm", "MatMul"]  # the heavy ops; softmax and pooling stay float
# Activation ranges without the rarest 0.01 % of values: on a float MobileNetV2 the int8 copy's top-1
# agreed with the float model on 20 of 29 shared photos with MinMax ranges, on 23 with these
PERCENTILE = 99.99
CROP_SIDE = 448  # decoded at least this big before cropping, as training does (``load_photo``)
# timing: 6 rounds of 5 runs in a row per model (4 counted); a classifier runs in a few ms
SPEED_ROUNDS, SPEED_ROW = 6, 5
TOP_K = 5


@dataclass(frozen=True)
class Agreement:
    """The int8 copy against the float model on the same held-out photos."""

    images: int
    k: int  # TOP_K, or fewer when the model has fewer classes
    top1: int  # photos where the copy's top-1 class is the float model's
    topk: int  # photos where the float model's top-1 class is among the copy's top k
    labelled: int  # photos whose folder names one of the model's species
    float_correct: int  # of those, photos whose top-1 is that species
    int8_correct: int

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.images

    @property
    def topk_rate(self) -> float:
        return self.topk / self.images

    def accuracy(self, correct: int) -> float | None:
        return correct / self.labelled if self.labelled else None


@dataclass(frozen=True)
class ClassifierResult:
    manifest: Manifest
    model: Path
    card: Path
    agreement: Agreement
    float_ms: float  # median ms of one inference, onnxruntime with its default session options
    int8_ms: float
    calibration_images: int
    int8_nodes: int  # nodes quantised here
    float_convs: list[str]  # convs that int8 would break, kept float (``quantize.float_convs``)
    int8_before: int  # nodes whose weights were int8 already (a trained classifier's backbone)
    seen_as: str  # whole photos, or the detector's crops


def _folder_species(path: Path, known: set[str]) -> str | None:
    """The species the photo's folder names, when it is one of the model's (a training folder)."""
    try:
        scientific = resolve(path.parent.name).scientific
    except NotATaxonError:
        return None
    return scientific if scientific in known else None


def agreement(
    float_cls: Classifier, int8_cls: Classifier, photos: list[tuple[Path, np.ndarray]]
) -> Agreement:
    k = min(TOP_K, len(float_cls.labels))
    frames = [frame for _, frame in photos]
    before, after = float_cls.classify(frames, top_k=k), int8_cls.classify(frames, top_k=k)
    known = {s for s in (species_of(label, float_cls.manifest.labels) for label in float_cls.labels) if s}
    truth = [_folder_species(path, known) for path, _ in photos]

    def correct(guesses: list[list[Guess]]) -> int:
        return sum(1 for t, g in zip(truth, guesses, strict=True) if t and g and g[0].species == t)

    return Agreement(
        images=len(photos),
        k=k,
        top1=sum(1 for f, q in zip(before, after, strict=True) if f[0].label == q[0].label),
        topk=sum(1 for f, q in zip(before, after, strict=True) if f[0].label in {g.label for g in q}),
        labelled=sum(1 for t in truth if t),
        float_correct=correct(before),
        int8_correct=correct(after),
    )


def _is_classifier(model: onnx.ModelProto, manifest: Manifest) -> None:
    """One row of class scores per image, or a one-line refusal."""
    dims = model.graph.output[0].type.tensor_type.shape.dim
    if len(dims) != 2:
        shape = "x".join(str(d.dim_value or d.dim_param or "?") for d in dims)
        raise QuantizeError(
            f"{manifest.ident}: {manifest.file} is not a classifier: its output is {shape}, "
            "not one row of class scores per photo"
        )


def quantize_classifier(
    manifest: Manifest,
    model_dir: Path,
    calibration: list[Path],
    out_dir: Path,
    tolerance: float = 0.02,
    max_frames: int = 64,
    crop_with: str | None = None,
    manifest_dirs: list[Path] | None = None,
) -> ClassifierResult:
    """Quantise ``manifest``'s classifier, score float and int8 on held-out photos, and write the
    int8 model, its manifest and its card into ``out_dir``; QuantizeError (nothing written) when
    the model is no classifier, has nothing float to quantise, or the copy disagrees too often.
    ``crop_with``: a detector that cuts each photo's animal out first, as ``yaguar train classifier``
    does (``Cropper``), so that the classifier sees what it sees at the station."""
    src = manifest.model_path(model_dir)
    model = onnx.load(str(src))
    _is_classifier(model, manifest)
    int8_before = set(already_int8(model))
    layers = [n for n in model.graph.node if n.op_type in INT8_OPS]
    todo = [n for n in layers if n.name not in int8_before]
    if not todo:
        raise QuantizeError(
            f"{manifest.ident} is already int8: its {len(layers)} Conv/Gemm/MatMul layers read int8 "
            "weights; nothing to quantise"
        )
    float_cls = Classifier(manifest, model_dir)
    side = max(manifest.input.width, manifest.input.height)
    photos = calibration_images(calibration, 2 * max_frames, CROP_SIDE if crop_with else side)
    if crop_with:
        cropper = Cropper(crop_with, model_dir, manifest_dirs)
        photos = [(path, cropper.crop(frame).pixels) for path, frame in photos]
    calibrate, held_out = photos[0::2], photos[1::2]
    if not held_out:
        raise QuantizeError(
            f"calibration folder {', '.join(map(str, calibration))} has only 1 usable image; a classifier "
            "needs 2 or more (half calibrate it, half are held out to score the copy)"
        )
    name = f"{manifest.name}_int8"
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / f"{name}.onnx"
        tensors = [float_cls.tensor([frame]) for _, frame in calibrate]
        measured = quantize_file(model, candidate, tensors, float_cls.input_name, INT8_OPS, PERCENTILE)
        quantised = {n.name for n in todo}
        kept = [conv for conv in measured if conv in quantised]  # not those that were int8 already
        training = manifest.training and manifest.training.model_copy(update={"card": f"{name}.card.md"})
        int8_manifest = int8_copy(
            manifest, candidate.name, float_cls.labels, sha256_from=None, source=None, training=training
        )
        int8_cls = Classifier(int8_manifest, Path(tmp), verify_sha256=False)
        scored = agreement(float_cls, int8_cls, held_out)
        feed = {float_cls.input_name: float_cls.tensor([held_out[0][1]])}
        sessions = [
            ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (src, candidate)
        ]
        float_ms, int8_ms = timed_in_turn(
            [partial(s.run, None, feed) for s in sessions], SPEED_ROUNDS, SPEED_ROW
        )
        accept(manifest, scored, tolerance)
        out_dir.mkdir(parents=True, exist_ok=True)
        model_path, card_path = out_dir / candidate.name, out_dir / f"{name}.card.md"
        atomic_write(model_path, candidate.read_bytes())
    final = int8_written(
        int8_manifest, manifest, model_path, calibration, f" --crop-with {crop_with}" if crop_with else ""
    )
    result = ClassifierResult(
        final,
        model_path,
        card_path,
        scored,
        float_ms,
        int8_ms,
        len(calibrate),
        len(todo) - len(kept),
        kept,
        len(layers) - len(todo),
        f"the best animal box of each found by {crop_with} (the whole photo where it found none)"
        if crop_with
        else "whole photos",
    )
    atomic_write(card_path, card(result, manifest, calibration))
    atomic_write(out_dir / f"{name}.toml", manifest_toml(final).encode())
    return result


def numbers(a: Agreement) -> str:
    """The scores in one line, as the refusal and the command's summary print them."""
    text = f"top-1 agreement {a.top1}/{a.images} = {a.top1_rate:.3f}, top-{a.k} {a.topk}/{a.images}"
    if a.labelled:
        text += f", accuracy {a.int8_correct}/{a.labelled} against float {a.float_correct}/{a.labelled}"
    return text


def accept(manifest: Manifest, a: Agreement, tolerance: float) -> None:
    disagreement = 1 - a.top1_rate
    drop = (a.float_correct - a.int8_correct) / a.labelled if a.labelled else 0.0
    if disagreement > tolerance or drop > tolerance:
        worst = f"disagreement {disagreement:.3f}" if disagreement >= drop else f"accuracy drop {drop:.3f}"
        raise QuantizeError(
            f"{manifest.ident}: int8 refused, {numbers(a)} on {a.images} held-out photos: {worst} > {tolerance}"
        )


def _accuracy_cell(a: Agreement, correct: int) -> str:
    rate = a.accuracy(correct)
    return "-" if rate is None else f"{correct}/{a.labelled} = {rate:.3f}"


def card(r: ClassifierResult, source: Manifest, calibration: list[Path]) -> bytes:
    m, a = r.manifest, r.agreement
    where = ", ".join(f"`{c!s}`" for c in calibration)
    trained = (
        f"Its training run's own validation: {source.training.validation_accuracy:.1%} of "
        f"{source.training.validation_images} photos (float)."
        if source.training
        else "Not trained on this station."
    )
    return "\n".join(
        [
            f"# {m.ident}: {source.ident} in int8 / en int8: model card / ficha del modelo",
            "",
            f"Made by `yaguar models quantize` on {datetime.now(UTC).isoformat(timespec='seconds')}:",
            "onnxruntime static quantisation, QDQ format, int8 weights per output channel, uint8",
            f"activations with ranges (the {PERCENTILE}th percentile) from {r.calibration_images} photos of {where} (every other",
            f"photo by name; the others are held out to score the copy), {r.seen_as}.",
            f"{r.int8_nodes} Conv/Gemm/MatMul nodes quantised here; {r.int8_before} read int8 weights already",
            f"and were left as they were; {len(r.float_convs)} stay float (the stem, and inputs whose channels",
            f"span under {MIN_STEPS:g} uint8 steps): {', '.join(r.float_convs) or 'none'}. {trained}",
            "",
            f"Scored on {a.images} held-out photos, each as the station's classifier sees it. Top-1 agreement:",
            "the int8 copy's first class is the float model's. Top-k: the float model's first class is",
            f"among the copy's first {a.k}. Accuracy: on the {a.labelled} photos whose folder names one of the",
            "model's species (from a training folder the head has seen them: the accuracy compares the two",
            "models, it is no estimate of the field's). Milliseconds: one inference, onnxruntime with its",
            f"default session options on this machine's CPU ({os.cpu_count()} cores), median, the two",
            f"models timed in turn, {SPEED_ROW} runs in a row each (the first of a row not counted).",
            "",
            f"| model / modelo | top-1 agreement / coincidencia | top-{a.k} | accuracy / exactitud | ms |",
            "|---|---|---|---|---|",
            f"| float `{source.file}` | - | - | {_accuracy_cell(a, a.float_correct)} | {r.float_ms:.2f} |",
            f"| int8 `{m.file}` | {a.top1}/{a.images} = {a.top1_rate:.3f} | {a.topk}/{a.images} = "
            f"{a.topk_rate:.3f} | {_accuracy_cell(a, a.int8_correct)} | {r.int8_ms:.2f} |",
            "",
            f"Speed on onnxruntime: {r.float_ms / r.int8_ms:.2f}x the float model's. "
            f"sha256 of the int8 file: `{m.sha256}`.",
            "",
        ]
    ).encode()
