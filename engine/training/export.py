"""Writing a trained classifier: ONE ONNX file (backbone + head + softmax), its manifest (the engine's
usual TOML, with the classes' scientific, Spanish and English names and the region list), and a model
card (data, counts, validation precision/recall per class, a confusion-matrix picture).

Every file is written whole or not at all (``atomic_write``), the manifest last: a half-finished
export never looks like a model to the station.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import onnx
from onnx import helper, numpy_helper

from yaguar.durable import atomic_write
from yaguar.taxonomy import SPECIES

from ..manifest import Manifest, TaxonEntry, TrainingInfo, load_manifest
from .backbone import EMBEDDING
from .head import Head, Validation

PROBABILITIES = "probabilities"


def compose(backbone: onnx.ModelProto, head: Head, name: str) -> onnx.ModelProto:
    """The cut backbone with the head appended: image in, class probabilities out."""
    model = onnx.ModelProto()
    model.CopyFrom(backbone)
    graph = model.graph
    graph.initializer.extend(
        [
            numpy_helper.from_array(head.weights, "yaguar_head_weights"),
            numpy_helper.from_array(head.bias, "yaguar_head_bias"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node(
                "Gemm",
                [EMBEDDING, "yaguar_head_weights", "yaguar_head_bias"],
                ["logits"],
                transB=1,
                name="yaguar_head",
            ),
            helper.make_node("Softmax", ["logits"], [PROBABILITIES], axis=1, name="yaguar_softmax"),
        ]
    )
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info(PROBABILITIES, onnx.TensorProto.FLOAT, [1, len(head.classes)])
    )
    graph.name = name
    model.producer_name = "yaguar train classifier"
    onnx.checker.check_model(model)
    return model


@dataclass(frozen=True)
class Report:
    """What the card says besides the validation: where the photos came from and what was skipped."""

    sources: list[str]
    counts: dict[str, int]
    skipped: dict[str, int]  # reason -> count
    crops: dict[str, int]  # "detector" / "whole" -> count
    train_images: int
    train_seconds: float
    region: str
    out_of_region: list[str]
    threshold: float  # below it the station names no species (the head only knows its own classes)


def write_model(
    out_dir: Path,
    name: str,
    version: str,
    model: onnx.ModelProto,
    head: Head,
    validation: Validation,
    report: Report,
    backbone: Manifest,
) -> Manifest:
    """Write model, confusion picture, card and (last) manifest into ``out_dir``; return the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = model.SerializeToString()
    atomic_write(out_dir / f"{name}.onnx", data)
    atomic_write(out_dir / f"{name}.confusion.png", confusion_png(validation, head.classes))
    atomic_write(out_dir / f"{name}.card.md", card(name, version, validation, report, backbone).encode())
    taxa = [
        TaxonEntry(
            scientific=c,
            es=SPECIES[c].es if c in SPECIES else c,
            en=SPECIES[c].en if c in SPECIES else c,
            images=report.counts.get(c, 0),
        )
        for c in head.classes
    ]
    training = TrainingInfo(
        region=report.region,
        taxa=taxa,
        backbone=backbone.ident,
        validation_accuracy=round(validation.accuracy, 4),
        validation_images=validation.images,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        sources=report.sources,
        card=f"{name}.card.md",
    )
    path = out_dir / f"{name}.toml"
    text = manifest_toml(name, version, backbone, head, training, report, hashlib.sha256(data).hexdigest())
    atomic_write(path, text.encode())
    return load_manifest(path)


def _q(value: object) -> str:
    """A TOML value: JSON's strings, numbers and booleans are valid TOML."""
    return json.dumps(value, ensure_ascii=False)


def manifest_toml(
    name: str,
    version: str,
    backbone: Manifest,
    head: Head,
    training: TrainingInfo,
    report: Report,
    sha256: str,
) -> str:
    spec = backbone.input
    lines = [
        "# Trained by `yaguar train classifier`: backbone + species head + softmax in one ONNX file.",
        f"name = {_q(name)}",
        f"version = {_q(version)}",
        'kind = "classifier"',
        f"description = {_q(f'{len(head.classes)} species of {training.region}, head on {backbone.ident}')}",
        f"file = {_q(name + '.onnx')}",
        f"sha256 = {_q(sha256)}",
        f"score_threshold = {report.threshold}",
        "",
        "[input]",
        f"width = {spec.width}",
        f"height = {spec.height}",
        f"layout = {_q(spec.layout)}",
        f"colour = {_q(spec.colour)}",
        f"dtype = {_q(spec.dtype)}",
        f"resize = {_q(spec.resize)}",
        "",
        "[output]",
        'format = "probabilities"',
        "",
        "[labels]",
        f"names = {_q(head.classes)}",
        'table = "none"',
        "",
        "[labels.species]",
        *[f"{_q(c)} = {_q(c)}" for c in head.classes if c in SPECIES],
        "",
        "[training]",
        *[
            f"{key} = {_q(value)}"
            for key, value in training.model_dump(exclude={"taxa"}, exclude_none=True).items()
        ],
    ]
    for taxon in training.taxa:
        lines += ["", "[[training.taxa]]", *[f"{k} = {_q(v)}" for k, v in taxon.model_dump().items()]]
    return "\n".join(lines) + "\n"


def confusion_png(validation: Validation, classes: list[str]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display at the station
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = [f"{SPECIES[c].es if c in SPECIES else c}\n({c})" for c in classes]
    size = 2.5 + 0.6 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    ConfusionMatrixDisplay(validation.confusion, display_labels=labels).plot(
        ax=ax, cmap="Greens", colorbar=False, xticks_rotation=45
    )
    ax.set_title(f"Validación / validation: {validation.accuracy:.0%} de {validation.images}")
    ax.set_xlabel("predicha / predicted")
    ax.set_ylabel("real / true")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def card(name: str, version: str, validation: Validation, report: Report, backbone: Manifest) -> str:
    rows = "\n".join(
        f"| *{s.name}* | {SPECIES[s.name].es if s.name in SPECIES else '-'} | "
        f"{SPECIES[s.name].en if s.name in SPECIES else '-'} | {report.counts.get(s.name, 0)} | "
        f"{s.support} | {' | '.join(s.shown())} |"
        for s in validation.per_class
    )
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(report.skipped.items())) or "none"
    crops = ", ".join(f"{n} {how}" for how, n in sorted(report.crops.items()))
    outside = ", ".join(report.out_of_region) or "none"
    return f"""# {name} {version}: model card / ficha del modelo

Species classifier trained on this station: a head (logistic regression, balanced class weights) on
the pooled features of {backbone.ident}, exported as one ONNX file (backbone + head + softmax).

## Data / datos
- Sources / fuentes: {", ".join(report.sources)}
- Photos used / fotos usadas: {sum(report.counts.values())} ({report.train_images} to train, {validation.images} held back to validate)
- Skipped / descartadas: {skipped}
- Crops / recortes: {crops} (detector: the best animal box; whole: a crop already or no animal found)
- Region / región: {report.region}; classes outside it: {outside}
- Training time / tiempo de entrenamiento: {report.train_seconds:.2f} s

## Validation / validación (stratified held-back split)
Top-1 accuracy / exactitud: **{validation.accuracy:.1%}** on {validation.images} photos.

| species | español | English | photos | validated | precision | recall |
|---|---|---|---|---|---|---|
{rows}

![confusion matrix / matriz de confusión]({name}.confusion.png)

The head knows only these species: an animal of another species still gets one of them, so the
station names a species only above a probability of {report.threshold:.2f} (the manifest's
`score_threshold`). Small data gives modest, noisy numbers: judge the model on photos from your own
cameras.
"""
