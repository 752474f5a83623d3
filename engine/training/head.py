"""The species head: multinomial logistic regression on backbone embeddings (scikit-learn), with
class weights that balance common and rare species, checked on a stratified held-back split.

The head is a linear layer, so the standardisation is folded into its weights and the whole head
exports as one ONNX ``Gemm`` + ``Softmax``: the exported model gives the same probabilities as
``predict_proba``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import LeaveOneOut, cross_val_predict, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from .dataset import TrainingError

SEED = 20240611


@dataclass(frozen=True)
class ClassScore:
    name: str
    precision: float
    recall: float
    support: int  # validation photos of this class

    def shown(self) -> tuple[str, str]:
        """Precision and recall as printed; '-' when no photo of the class was held back (no score)."""
        if self.support == 0:
            return "-", "-"
        return f"{self.precision:.2f}", f"{self.recall:.2f}"


@dataclass(frozen=True)
class Validation:
    accuracy: float
    images: int
    per_class: list[ClassScore]
    confusion: np.ndarray  # rows: true class, columns: predicted, in ``classes`` order
    predicted: np.ndarray  # the predicted class index of each scored photo


@dataclass(frozen=True)
class Head:
    classes: list[str]
    weights: np.ndarray  # [classes, features], float32, standardisation folded in
    bias: np.ndarray  # [classes], float32

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        logits = embeddings.astype(np.float32) @ self.weights.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class TrainedHead:
    head: Head
    validation: Validation
    train_images: int
    seconds: float


def _model() -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=3000, C=0.5))


def fold(pipeline: Pipeline, classes: list[str]) -> Head:
    """The fitted scaler + logistic regression as one linear layer whose softmax is predict_proba."""
    scaler: StandardScaler = pipeline[0]
    regression: LogisticRegression = pipeline[-1]
    coef = np.asarray(regression.coef_, dtype=np.float64)
    intercept = np.asarray(regression.intercept_, dtype=np.float64)
    if coef.shape[0] == 1:  # two classes: sigmoid(z) == softmax([-z/2, z/2])
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    scale = np.asarray(scaler.scale_, dtype=np.float64)
    mean = np.asarray(scaler.mean_, dtype=np.float64)
    weights = coef / scale
    bias = intercept - weights @ mean
    order = [list(regression.classes_).index(i) for i in range(len(classes))]
    return Head(classes, weights[order].astype(np.float32), bias[order].astype(np.float32))


def train(
    embeddings: np.ndarray, labels: np.ndarray, classes: list[str], val_fraction: float = 0.25
) -> TrainedHead:
    """Fit on a stratified split and score on the held-back part; ``labels`` index ``classes``."""
    counts = np.bincount(labels, minlength=len(classes))
    if len(classes) < 2 or counts.min() < 2:
        raise TrainingError("every species needs at least two photos to split into training and validation")
    n_val = max(len(classes), round(val_fraction * len(labels)))
    if len(labels) - n_val < len(classes):
        raise TrainingError(
            f"too few photos ({len(labels)}) for {len(classes)} species and a validation split"
        )
    fit_x, val_x, fit_y, val_y = train_test_split(
        embeddings, labels, test_size=n_val, stratify=labels, random_state=SEED
    )
    start = time.perf_counter()
    pipeline = _model().fit(fit_x, fit_y)
    seconds = time.perf_counter() - start
    head = fold(pipeline, classes)
    predicted = head.probabilities(val_x).argmax(axis=1)
    return TrainedHead(head, score(val_y, predicted, classes), len(fit_y), seconds)


def score(truth: np.ndarray, predicted: np.ndarray, classes: list[str]) -> Validation:
    indices = list(range(len(classes)))
    precision, recall, _, support = precision_recall_fscore_support(
        truth, predicted, labels=indices, zero_division=0
    )
    per_class = [
        ClassScore(name, float(p), float(r), int(s))
        for name, p, r, s in zip(classes, precision, recall, support, strict=True)
    ]
    return Validation(
        float(accuracy_score(truth, predicted)),
        len(truth),
        per_class,
        confusion_matrix(truth, predicted, labels=indices),
        np.asarray(predicted),
    )


def leave_one_out(embeddings: np.ndarray, labels: np.ndarray, classes: list[str]) -> Validation:
    """Each photo predicted by a head trained on all the others: the fairest score on little data."""
    predicted = cross_val_predict(_model(), embeddings, labels, cv=LeaveOneOut())
    return score(labels, np.asarray(predicted), classes)
