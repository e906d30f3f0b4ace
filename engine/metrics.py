"""Classification metric math on top of scikit-learn, returned as plain JSON types."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

if TYPE_CHECKING:
    from transformers import EvalPrediction

HEADLINE_METRICS = ("accuracy", "macro_f1", "micro_f1", "weighted_f1", "macro_precision", "macro_recall")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax that stays finite for very large or very negative logits."""
    logits = np.asarray(logits, dtype=np.float64)
    # Subtracting the row maximum keeps exp() from overflowing; the result is mathematically unchanged.
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=-1, keepdims=True)


def _headline(y_true: np.ndarray, y_pred: np.ndarray, label_ids: list[int]) -> dict[str, float]:
    # Passing labels= explicitly keeps classes that are absent from this split in the averages and the matrix,
    # so metrics from different splits describe the same set of classes.
    macro_p, macro_r, macro_f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=label_ids, average="macro", zero_division=0
    )
    _, _, micro_f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=label_ids, average="micro", zero_division=0
    )
    _, _, weighted_f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=label_ids, average="weighted", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(macro_f1),
        "micro_f1": float(micro_f1),
        "weighted_f1": float(weighted_f1),
        "macro_precision": float(macro_p),
        "macro_recall": float(macro_r),
    }


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

    precision, recall, f1, support = precision_recall_fscore_support(
        true, pred, labels=label_ids, average=None, zero_division=0
    )
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(labels)
    }
    matrix = confusion_matrix(true, pred, labels=label_ids)
    return {
        "metrics": _headline(true, pred, label_ids),
        "per_class": per_class,
        "confusion_matrix": {"labels": list(labels), "matrix": matrix.astype(int).tolist()},
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
        return _headline(y_true, y_pred, label_ids)

    return compute_metrics
