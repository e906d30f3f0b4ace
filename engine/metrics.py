"""Classification metrics as plain JSON types, and the project's own `evaluate` modules that compute every report's
scores (scikit-learn and seqeval underneath): a user can `evaluate.load(metric_module_path(name))` the same metric."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from evaluate import EvaluationModule
    from transformers import EvalPrediction

HEADLINE_METRICS = ("accuracy", "macro_f1", "micro_f1", "weighted_f1", "macro_precision", "macro_recall")
CLASSIFICATION_MODULE = "classification"
METRIC_MODULES = Path(__file__).resolve().parent / "metric_modules"
# One loaded module holds the inputs of one computation at a time; threads of one process (the web app's) take turns.
_COMPUTING = threading.Lock()


def metric_module_path(name: str) -> Path:
    """The folder of one of the project's evaluate modules ("classification", "entities"), for `evaluate.load`."""
    folder = METRIC_MODULES / name
    if not (folder / f"{name}.py").is_file():
        shipped = sorted(path.name for path in METRIC_MODULES.iterdir() if (path / f"{path.name}.py").is_file())
        raise ValueError(f"no metric module {name!r}; the project ships {shipped}")
    return folder


@functools.cache
def metric_module(name: str) -> EvaluationModule:
    """The evaluate module `name`, loaded once per process from the project's folder (never from the Hub)."""
    import evaluate

    # In memory: no Arrow cache files (and their locks) under ~/.cache/huggingface/metrics for every computation.
    return evaluate.load(str(metric_module_path(name)), keep_in_memory=True)


def compute_metric(name: str, **inputs: Any) -> dict[str, Any]:
    """`metric_module(name).compute(**inputs)`: what `evaluate.load(metric_module_path(name))` computes."""
    module = metric_module(name)
    with _COMPUTING:
        return module.compute(**inputs)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax that stays finite for very large or very negative logits."""
    logits = np.asarray(logits, dtype=np.float64)
    # Subtracting the row maximum keeps exp() from overflowing; the result is mathematically unchanged.
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=-1, keepdims=True)


def _scores(y_true: np.ndarray, y_pred: np.ndarray, label_ids: list[int]) -> dict[str, Any]:
    # Passing labels= explicitly keeps classes that are absent from this split in the averages and the matrix,
    # so metrics from different splits describe the same set of classes.
    return compute_metric(CLASSIFICATION_MODULE, predictions=y_pred, references=y_true, labels=label_ids)


def _headline(scores: dict[str, Any]) -> dict[str, float]:
    return {name: float(scores[name]) for name in HEADLINE_METRICS}


def _as_label_ids(values: Sequence[int] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of class ids; got shape {array.shape}")
    return array.astype(np.int64)


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: list[str]) -> dict[str, Any]:
    """Headline metrics, per-class scores and the confusion matrix for class ids indexing `labels`."""
    true = _as_label_ids(y_true, "y_true")
    pred = _as_label_ids(y_pred, "y_pred")
    if len(true) != len(pred):
        raise ValueError(f"y_true has {len(true)} items but y_pred has {len(pred)}; they must pair one to one")
    if len(true) == 0:
        raise ValueError("cannot compute metrics on an empty split; y_true and y_pred are empty")
    label_ids = list(range(len(labels)))
    for name, array in (("y_true", true), ("y_pred", pred)):
        outside = sorted({int(v) for v in array if not 0 <= v < len(labels)})
        if outside:
            raise ValueError(f"{name} holds class ids {outside} outside 0..{len(labels) - 1} for labels {labels}")

    scores = _scores(true, pred, label_ids)
    per_class = {name: dict(scores["per_class"][i]) for i, name in enumerate(labels)}
    return {
        "metrics": _headline(scores),
        "per_class": per_class,
        "confusion_matrix": {"labels": list(labels), "matrix": scores["confusion_matrix"]},
    }


def trainer_compute_metrics(labels: list[str]) -> Callable[[EvalPrediction], dict[str, float]]:
    """A `compute_metrics` function for transformers' Trainer that reports the headline metrics as floats."""
    label_ids = list(range(len(labels)))

    def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
        logits = eval_pred.predictions
        # Models that also return hidden states or attentions hand the Trainer a tuple; the logits come first.
        if isinstance(logits, tuple | list):
            logits = logits[0]
        # Predictions and label_ids of one call come from the same batches in the same order, so they pair up;
        # a dataset's own order may differ (e.g. length grouping), which is why it is never used here.
        y_pred = np.argmax(np.asarray(logits), axis=-1).reshape(-1)
        y_true = np.asarray(eval_pred.label_ids).reshape(-1)
        return _headline(_scores(y_true, y_pred, label_ids))

    return compute_metrics
