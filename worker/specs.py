"""Job specs by kind: training is the engine's JobSpec, evaluating a finished model on a file its EvaluateSpec."""

from __future__ import annotations

from typing import Any

from engine.spec import EvaluateSpec, JobSpec
from worker.records import EVALUATE, TRAIN

Spec = JobSpec | EvaluateSpec


def kind_of(spec: Spec) -> str:
    """'train' or 'evaluate'."""
    return EVALUATE if isinstance(spec, EvaluateSpec) else TRAIN


def parse_spec(raw: dict[str, Any], *, kind: str | None = None, source: str = "spec") -> Spec:
    """A spec from a plain dict; without `kind`, a mapping with a `model` key is an evaluation, else training."""
    if not isinstance(raw, dict):
        raise ValueError(f"{source} must be a mapping, not {type(raw).__name__}")
    kind = kind or (EVALUATE if "model" in raw else TRAIN)
    if kind == EVALUATE:
        return EvaluateSpec.from_dict(raw, source=source)
    if kind == TRAIN:
        return JobSpec.from_dict(raw, source=source)
    raise ValueError(f"unknown job kind {kind!r}; kinds are '{TRAIN}' and '{EVALUATE}'")
