"""A real YOLOv5s (the architecture from the yaml inside the yolov5 package) with random weights, saved
as yolov5's train.py saves a checkpoint: what `yaguar models import` is tested on, since MegaDetector's
weights cannot be downloaded here."""

from __future__ import annotations

from pathlib import Path

from yaguar.engine.pt_import import MEGADETECTOR_LABELS, _yolov5_modules


def save_random_yolov5s(path: Path, labels: list[str] = MEGADETECTOR_LABELS, seed: int = 0) -> Path:
    torch, yolo = _yolov5_modules()
    yaml_path = Path(yolo.yolo.__file__).resolve().parent / "yolov5s.yaml"
    torch.manual_seed(seed)
    model = yolo.yolo.DetectionModel(str(yaml_path), ch=3, nc=len(labels))
    model.names = dict(enumerate(labels))
    # PyTorch's default init shrinks the signal layer by layer, and every anchor then scores the same;
    # He init keeps it, so that random weights give scores that differ from place to place and picture
    # to picture (boxes to compare between backends).
    detect = model.model[-1]
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            if any(module is head for head in detect.m):
                torch.nn.init.normal_(module.weight, 0.0, 0.3)
            else:
                torch.nn.init.kaiming_normal_(module.weight)
    # train.py's checkpoint: the model in half precision beside training state
    checkpoint = {
        "epoch": -1,
        "best_fitness": None,
        "model": model.half(),
        "ema": None,
        "updates": None,
        "optimizer": None,
        "opt": {"imgsz": 320},
        "date": None,
    }
    torch.save(checkpoint, path)
    return path


def save_random_yolov8n(path: Path, labels: list[str] = MEGADETECTOR_LABELS, seed: int = 0) -> Path:
    """A YOLOv8n (ultralytics' own yaml) with random weights, saved as ultralytics' trainer saves one:
    the layout of MegaDetector v6 / v1000 checkpoints."""
    torch, _ = _yolov5_modules()  # also makes torchvision importable for ultralytics
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    model = DetectionModel("yolov8n.yaml", nc=len(labels), verbose=False)
    model.names = dict(enumerate(labels))
    model.args = {"imgsz": 320}
    checkpoint = {"epoch": -1, "model": model.half(), "ema": None, "train_args": {"imgsz": 320}}
    torch.save(checkpoint, path)
    return path
