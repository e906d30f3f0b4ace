"""Fine-tune a model: data -> tokenizer -> model -> Trainer -> report, written into one output folder."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import transformers
from transformers import AutoTokenizer

from engine.catalog import resolve_model
from engine.fit import CHECKPOINTS, Context, TrainingStopped, fit
from engine.hardware import limit_threads_to_cores, resolve_precision
from engine.language import advise
from engine.model_card import write_model_card
from engine.progress import OnEvent, ShouldStop, announce
from engine.report import write_report
from engine.spec import JobSpec
from engine.tasks import get_task
from engine.techniques.ensemble import save_model
from engine.techniques.run import train_with_techniques

log = logging.getLogger(__name__)

MODEL = "model"
__all__ = ["TrainResult", "TrainingStopped", "train"]


@dataclass(frozen=True)
class TrainResult:
    """Where a finished job's files are and its headline numbers."""

    output_dir: Path
    model_dir: Path
    report: dict[str, Any]

    @property
    def report_path(self) -> Path:
        return self.output_dir / "report.json"


def train(
    spec: JobSpec,
    output_dir: str | Path,
    *,
    on_event: OnEvent | None = None,
    should_stop: ShouldStop | None = None,
    resume: bool = False,
) -> TrainResult:
    """Fine-tune `spec.base_model` on `spec.data`; write spec.json, model/ (with its README.md model card),
    report.json and report.md to output_dir.

    With `resume=True` an interrupted run continues from its last checkpoint in output_dir (a search starts its
    trials again). Raises DataError for unusable data and TrainingStopped when `should_stop()` ended it early.
    """
    output_dir = Path(output_dir).resolve()
    _check_output_dir(output_dir, spec, resume=resume)
    params = spec.params
    task = get_task(spec.task)
    recipe = task.recipe()
    transformers.set_seed(params.seed)  # before the new head is initialised, so runs repeat exactly

    announce(on_event, "preparing")
    model_path = resolve_model(spec.base_model, task=spec.task)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    prepared = recipe.prepare(spec, tokenizer)
    advise(prepared.summary, spec.task, spec.base_model)  # the report says so too when the model reads it badly
    _start_output_dir(output_dir, spec, resume=resume)  # only once the data is known to be usable

    announce(on_event, "loading")
    limit_threads_to_cores()
    ctx = Context(recipe, tokenizer, output_dir, resolve_precision(params.precision), on_event, should_stop)
    announce(on_event, "training")
    if spec.techniques:
        # Members, rounds, a first pre-training stage and the plain recipe to compare with: see engine.techniques.run.
        outcome = train_with_techniques(ctx, spec, prepared, model_path)
        report, model_dir = outcome.report, outcome.save()
    else:
        fitted = fit(ctx, spec, prepared, model_path, resume=resume)
        announce(on_event, "evaluating")  # the test split, and for chat the base model beside the tuned one
        report = recipe.report(spec, fitted.model, tokenizer, prepared, fitted.train_info)
        announce(on_event, "reporting")
        # A search whose best trials answer together saves them as an ensemble folder, as techniques.ensemble does.
        ensemble = (fitted.train_info["search"] or {}).get("ensemble", {})
        model_dir = save_model(fitted.model, recipe, tokenizer, output_dir, ensemble.get("members", []))
    write_report(report, output_dir, renderer=task.render_markdown)
    write_model_card(model_dir, spec, report)  # README.md: the Hugging Face model card (and the adapter's)
    shutil.rmtree(output_dir / CHECKPOINTS, ignore_errors=True)  # the best one is model/ now
    return TrainResult(output_dir=output_dir, model_dir=model_dir, report=report)


def _check_output_dir(output_dir: Path, spec: JobSpec, *, resume: bool) -> None:
    if (output_dir / MODEL).exists() or (output_dir / "report.json").exists():
        raise FileExistsError(
            f"output folder {output_dir} already holds a trained model; choose another output folder or delete it"
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output folder {output_dir} is a file; choose another output folder")
    spec_path = output_dir / "spec.json"
    if resume and spec_path.is_file() and JobSpec.load(spec_path) != spec:
        raise ValueError(f"cannot resume in {output_dir}: its spec.json describes a different job")


def _start_output_dir(output_dir: Path, spec: JobSpec, *, resume: bool) -> None:
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            shutil.rmtree(output_dir / CHECKPOINTS, ignore_errors=True)
        spec.save(output_dir / "spec.json")
    except OSError as exc:
        raise ValueError(
            f"cannot write to output folder {output_dir}: {exc.strerror}; choose another output folder"
        ) from exc
