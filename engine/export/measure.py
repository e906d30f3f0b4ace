"""Measure model folders as they would be deployed: size on disk, one-text latency, batch throughput, test score."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.export import Timing
from engine.predict import Predictor


def folder_megabytes(folder: Path) -> float:
    """Size on disk of every file under `folder`, in MB (10^6 bytes)."""
    return round(sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e6, 2)


def _runner(predictor: Predictor) -> Callable[[list[str]], Any]:
    return predictor.classify if predictor.task_info.playground == "classify" else predictor.tag


def measure_side_by_side(
    predictors: list[Predictor],
    texts: list[str],
    score: Callable[[Predictor], dict[str, float]],
    timing: Timing,
) -> list[dict[str, Any]]:
    """Size, p50 one-text latency, best texts/s and test metrics of each predictor, timed in alternating rounds."""
    if not texts:
        raise ValueError("the test split is empty: there is nothing to measure the variants on")
    batch = list(itertools.islice(itertools.cycle(texts), max(timing.batch_texts, len(texts))))
    latencies: list[list[float]] = [[] for _ in predictors]
    best = [float("inf")] * len(predictors)
    for predictor in predictors:
        _runner(predictor)(texts[:8])  # warm-up: first calls allocate, and ONNX Runtime plans its graph
    for _ in range(timing.rounds):
        for i, predictor in enumerate(predictors):
            run = _runner(predictor)
            for text in texts[: timing.latency_texts]:
                started = time.perf_counter()
                run([text])
                latencies[i].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            run(batch)
            best[i] = min(best[i], time.perf_counter() - started)
    return [
        {
            "variant": predictor.variant,
            "precision": predictor.precision,
            "size_mb": folder_megabytes(predictor.model_dir),
            "latency_p50_ms": round(statistics.median(latencies[i]), 2),
            "texts_per_second": round(len(batch) / best[i], 1),
            "metrics": {name: round(float(value), 4) for name, value in score(predictor).items()},
        }
        for i, predictor in enumerate(predictors)
    ]


def compared(original: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    """The variant's row with its changes from the original: metric points, size and speed ratios."""
    changes = {
        name: round(variant["metrics"][name] - value, 4)
        for name, value in original["metrics"].items()
        if name in variant["metrics"]
    }
    return {
        **variant,
        "metric_change": changes,
        "size_ratio": round(variant["size_mb"] / original["size_mb"], 3) if original["size_mb"] else None,
        "speedup": round(variant["texts_per_second"] / original["texts_per_second"], 2)
        if original["texts_per_second"]
        else None,
    }
