"""Splitting labeled rows into train / validation / test, and the length statistics every data summary reports."""

from __future__ import annotations

import random

import numpy as np

from engine.errors import DataError


def stratified_split(labels: list[str], held_out: dict[str, float], seed: int) -> dict[str, list[int]]:
    """Per label, shuffle with the seed and hold out max(1, round(n * fraction)) rows for each missing split."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    need = 1 + len(held_out)
    short = {label: len(idx) for label, idx in sorted(by_label.items()) if len(idx) < need}
    if short:
        splits = " and ".join(["training", *held_out])
        shown = ", ".join(f"'{label}' has {n}" for label, n in list(short.items())[:10])
        raise DataError(
            f"too few examples to split: {shown} (at least {need} per label are needed, one each for {splits}); "
            "add examples of those labels, remove them, or supply separate validation and test files"
        )
    rng = random.Random(seed)
    out: dict[str, list[int]] = {name: [] for name in ("train", *held_out)}
    for _label, indices in sorted(by_label.items()):
        indices = indices[:]
        rng.shuffle(indices)
        counts = {name: max(1, round(len(indices) * fraction)) for name, fraction in held_out.items()}
        while sum(counts.values()) > len(indices) - 1:
            largest = max(counts, key=counts.__getitem__)
            counts[largest] -= 1
        start = 0
        for name, count in counts.items():
            out[name] += indices[start : start + count]
            start += count
        out["train"] += indices[start:]
    return {name: sorted(idx) for name, idx in out.items()}


def length_stats(lengths: list[int], unit: str) -> dict:
    """Percentiles (50, 90, 95, 99) and the maximum of `lengths`, in `unit` (tokens or words)."""
    values = np.asarray(lengths)
    stats = {f"p{q}": int(np.percentile(values, q, method="higher")) for q in (50, 90, 95, 99)}
    return {**stats, "max": int(values.max()), "unit": unit}
