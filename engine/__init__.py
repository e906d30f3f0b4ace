"""Fine-tuning, evaluation and inference library of Finetune Playground.

A plain library: it never imports celery, redis or gradio. Heavy modules load lazily so that
`import engine` stays cheap for the CLI and the web app.
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.errors import DataError, ModelNotFoundError
from engine.spec import DataSpec, JobSpec, TrainingParams

_LAZY = {
    "train": "engine.train",
    "TrainResult": "engine.train",
    "TrainingStopped": "engine.train",
    "evaluate": "engine.evaluation",
    "Predictor": "engine.predict",
    "inspect_data": "engine.tasks.text_classification.data",
    "list_models": "engine.catalog",
    "resolve_model": "engine.catalog",
}

__all__ = ["DataError", "DataSpec", "JobSpec", "ModelNotFoundError", "TrainingParams", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
