"""Self-training: the model labels unlabeled texts, and its confident guesses join the training data."""

from __future__ import annotations

from typing import Any

import numpy as np


def pseudo_labels(
    probs: np.ndarray,
    *,
    threshold: float,
    max_per_label: int | None = None,
    proportions: list[float] | None = None,
) -> tuple[list[int], list[int]]:
    """Rows whose top probability is at least `threshold`, with that label; the most confident first per label,
    at most `max_per_label` of each, and with `proportions` (a share per label) as many of each label as keeps
    those shares. Returns (row indices, label ids), in row order."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probs must be (texts, labels); got shape {probs.shape}")
    best = probs.argmax(axis=1)
    confidence = probs[np.arange(len(probs)), best]
    confident = [np.flatnonzero((best == label) & (confidence >= threshold)) for label in range(probs.shape[1])]
    caps = [len(rows) if max_per_label is None else min(len(rows), max_per_label) for rows in confident]
    if proportions is not None:
        # The largest total whose split by `proportions` every label can fill from its confident rows.
        total = min((cap / share for cap, share in zip(caps, proportions, strict=True) if share > 0), default=0)
        caps = [min(cap, int(total * share + 1e-9)) for cap, share in zip(caps, proportions, strict=True)]
    keep: list[int] = []
    for rows, cap in zip(confident, caps, strict=True):
        rows = rows[np.argsort(-confidence[rows], kind="stable")]
        keep.extend(rows[:cap].tolist())
    keep.sort()
    return keep, [int(best[i]) for i in keep]


def added_per_label(label_ids: list[int], labels: list[str]) -> dict[str, int]:
    """How many pseudo-labels each label got (every label, 0 included)."""
    counts = np.bincount(np.asarray(label_ids, dtype=np.int64), minlength=len(labels)) if label_ids else None
    return {name: int(counts[i]) if counts is not None else 0 for i, name in enumerate(labels)}


def round_summary(index: int, added: dict[str, int], train_rows: int, report: dict[str, Any], metric: str) -> dict:
    """One row of the report's self-training table."""
    validation = (report.get("train") or {}).get(f"best_validation_{metric}")
    return {
        "round": index,
        "added": added,
        "added_total": sum(added.values()),
        "train_rows": train_rows,
        "validation_score": validation,
        "test_score": report["metrics"].get(metric),
    }
