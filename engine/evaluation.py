"""Evaluate a finished model on a new labeled file and write the same report as training does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.predict import Predictor
from engine.report import write_report
from engine.spec import JobSpec


def evaluate(
    model_dir: str | Path,
    data_file: str | Path,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    format: str | None = None,
    output: str | Path | None = None,
    predictor: Predictor | None = None,
) -> dict[str, Any]:
    """Score the model in `model_dir` on a labeled file; write `output` (.json, plus .md beside it) when given.

    For a token-classification model `text_column`/`label_column` name the tokens and tags fields (JSON/JSONL),
    or `label_column` the CoNLL tag column number.
    """
    predictor = predictor or Predictor(model_dir)
    task = predictor.task_info
    columns = {"text_column": text_column, "label_column": label_column, "format": format}
    report = task.evaluate(predictor, str(data_file), columns, training_spec(Path(model_dir)))
    report["model_dir"] = str(Path(model_dir).resolve())
    if output is not None:
        output = Path(output)
        write_report(report, output.parent, name=output.stem, renderer=task.render_markdown)
    return report


def training_spec(model_dir: Path) -> JobSpec | None:
    """The spec.json a playground-trained model has one level up; None for other models (or an unreadable one)."""
    path = model_dir / ".." / "spec.json"
    if not path.is_file():
        return None
    try:
        return JobSpec.load(path)
    except ValueError:
        return None


__all__ = ["evaluate", "training_spec"]
