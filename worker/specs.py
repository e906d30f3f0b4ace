"""Job specs by kind: training uses the engine's JobSpec, evaluating a finished model on a file EvaluateSpec."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.spec import FileFormat, JobSpec, format_validation_error
from worker.records import EVALUATE, TRAIN


class EvaluateSpec(BaseModel):
    """Evaluate a finished model on a labeled file and write report.json / report.md."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, description="The model/ folder of a finished training job, or that job's id.")
    data: str = Field(min_length=1, description="Labeled file to evaluate on (CSV, TSV, JSON, JSONL or Parquet).")
    format: FileFormat | None = Field(default=None, description="File format; guessed when absent.")
    text_column: str | None = Field(default=None, description="Column holding the text; guessed when absent.")
    label_column: str | None = Field(default=None, description="Column holding the label; guessed when absent.")

    @classmethod
    def from_dict(cls, raw: dict, *, source: str = "spec") -> EvaluateSpec:
        """Validate a plain dict with a readable error."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(f"{source} is not a valid evaluation spec:\n{format_validation_error(exc)}") from exc


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
