"""Job specs by kind: training is the engine's JobSpec, evaluating a finished model its EvaluateSpec, and making a
deployable variant of one its ExportSpec."""

from __future__ import annotations

from typing import Any

from engine.spec import EvaluateSpec, ExportSpec, JobSpec
from worker.records import EVALUATE, EXPORT, TRAIN

Spec = JobSpec | EvaluateSpec | ExportSpec
_KIND_OF = {JobSpec: TRAIN, EvaluateSpec: EVALUATE, ExportSpec: EXPORT}
_SPEC_OF = {kind: spec for spec, kind in _KIND_OF.items()}


def kind_of(spec: Spec) -> str:
    """'train', 'evaluate' or 'export'."""
    return _KIND_OF[type(spec)]


def parse_spec(raw: dict[str, Any], *, kind: str | None = None, source: str = "spec") -> Spec:
    """A spec from a plain dict; without `kind`: a mapping with `model` and `to` exports, one with `model`
    evaluates, anything else trains."""
    if not isinstance(raw, dict):
        raise ValueError(f"{source} must be a mapping, not {type(raw).__name__}")
    kind = kind or (EXPORT if "model" in raw and "to" in raw else EVALUATE if "model" in raw else TRAIN)
    if kind not in _SPEC_OF:
        raise ValueError(f"unknown job kind {kind!r}; kinds are {', '.join(repr(k) for k in _SPEC_OF)}")
    return _SPEC_OF[kind].from_dict(raw, source=source)
