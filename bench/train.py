"""Benchmark of training a species classifier on the station, in one run on the shared photos:

1. embeddings per second of the MobileNetV2 backbone (cut at its pooled features), onnxruntime and
   OpenCL on the same crops, and the ratio OpenCL / onnxruntime;
2. training time: the head's fit (scikit-learn) and a leave-one-out evaluation, and the whole
   ``yaguar train classifier`` run (detector crops + embeddings + head + export); per species, how
   many crops the stock MobileNetV2 names correctly next to the trained head's leave-one-out count
   (the stock ImageNet labels have no grey heron, so that row shows what the station could not say);
3. the exported model's latency (backbone + head + softmax, one ONNX file) next to the stock
   MobileNetV2 classifier's on the same crops and backend: the reference the new model replaces.

    .venv/bin/python bench/train.py [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the shared-photo training folder helper lives with the tests

from tests.support.training import shared_species_folder  # noqa: E402
from yaguar.engine.backends.base import BackendError  # noqa: E402
from yaguar.engine.classifier import Classifier  # noqa: E402
from yaguar.engine.manifest import find_manifest  # noqa: E402
from yaguar.engine.training.backbone import Embedder  # noqa: E402
from yaguar.engine.training.head import leave_one_out, train  # noqa: E402
from yaguar.engine.training.trainer import TrainOptions, TrainResult, train_classifier  # noqa: E402
from yaguar.paths import shared_data_dir  # noqa: E402

BACKBONE = "mobilenet_v2_imagenet_quant"


def per_item_ms(run: Callable[[], object], items: int, repeat: int) -> float:
    """Median milliseconds per item over ``repeat`` timed runs, after one warm-up run."""
    run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000 / items)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    repeat = 2 if args.quick else args.repeat
    data = shared_data_dir()
    if data is None:
        print("shared data (../shared/data or YAGUAR_DATA_DIR) is not present")
        return 2
    models = data / "models"
    print(f"bench/train.py at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    with tempfile.TemporaryDirectory(prefix="yaguar-bench-train-") as tmp:
        folder = shared_species_folder(data, Path(tmp) / "species")
        options = TrainOptions(
            [folder], Path(tmp) / "model", "bench_species", "1", models, progress=False, keep_crops=True
        )
        start = time.perf_counter()
        result = train_classifier(options)
        whole_run = time.perf_counter() - start
        crops = result.embedded.pixels
        embedded = result.embedded
        print(f"data: {len(crops)} photos of {len(embedded.classes)} species ({', '.join(embedded.classes)})")

        # 1. embeddings per second
        backbone = find_manifest(BACKBONE)
        rates: dict[str, float] = {}
        for kind in ("onnxruntime", "opencl"):
            try:
                embedder = Embedder(backbone, models, kind)
            except BackendError as exc:
                print(f"embeddings {kind:11}: not available ({exc})")
                continue
            ms = per_item_ms(lambda e=embedder: e.embed(crops), len(crops), repeat)
            rates[kind] = 1000 / ms
            print(f"embeddings {kind:11}: {rates[kind]:7.1f} crops/s ({ms:.2f} ms each)")
        if len(rates) == 2:
            print(f"  ratio OpenCL / onnxruntime: {rates['opencl'] / rates['onnxruntime']:.2f}")

        # 2. training time
        fit_times = []
        for _ in range(repeat):
            fit_times.append(train(embedded.embeddings, embedded.labels, embedded.classes).seconds)
        start = time.perf_counter()
        loo = leave_one_out(embedded.embeddings, embedded.labels, embedded.classes)
        loo_s = time.perf_counter() - start
        # the reference the head replaces: what the stock classifier names on the same crops
        stock_names = [g[0].species if g else None for g in Classifier(backbone, models).classify(crops, 1)]
        truth = [embedded.classes[i] for i in embedded.labels]
        loo_names = [embedded.classes[i] for i in loo.predicted]
        for species in embedded.classes:
            idx = [i for i, t in enumerate(truth) if t == species]
            stock_ok = sum(stock_names[i] == species for i in idx)
            head_ok = sum(loo_names[i] == species for i in idx)
            print(
                f"  {species:16}: stock MobileNetV2 names it on {stock_ok}/{len(idx)} crops, "
                f"the trained head (leave-one-out) on {head_ok}/{len(idx)}"
            )
        print(
            f"training: head fit {statistics.median(fit_times) * 1000:.1f} ms on "
            f"{result.trained.train_images} photos; leave-one-out ({loo.images} fits) {loo_s:.2f} s, "
            f"accuracy {loo.accuracy:.3f}; whole `train classifier` run {whole_run:.1f} s"
        )

        # 3. exported model latency next to the stock MobileNetV2
        exported = result.manifest
        for kind in ("onnxruntime", "opencl"):
            try:
                new = Classifier(exported, Path(tmp) / "model", kind)
                stock = Classifier(backbone, models, kind)
            except BackendError as exc:
                print(f"latency {kind:11}: not available ({exc})")
                continue
            new_ms = per_item_ms(lambda c=new: c.classify(crops), len(crops), repeat)
            stock_ms = per_item_ms(lambda c=stock: c.classify(crops), len(crops), repeat)
            agree = np.mean(
                [a[0].species == b for a, b in zip(new.classify(crops), _top(result), strict=True)]
            )
            print(
                f"latency {kind:11}: exported {new_ms:.2f} ms/crop, stock MobileNetV2 {stock_ms:.2f} ms/crop, "
                f"ratio exported / stock {new_ms / stock_ms:.2f}; top-1 same as the onnxruntime head on "
                f"{agree:.0%} of crops"
            )
    return 0


def _top(result: TrainResult) -> list[str]:
    """The head's own answer on the training embeddings (onnxruntime backbone), per crop."""
    embedded, head = result.embedded, result.trained.head
    return [embedded.classes[i] for i in head.probabilities(embedded.embeddings).argmax(axis=1)]


if __name__ == "__main__":
    sys.exit(main())
