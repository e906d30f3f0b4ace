"""Fine-tune a model: data -> tokenizer -> model -> Trainer -> report, written into one output folder."""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoTokenizer, PrinterCallback, Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from engine.catalog import resolve_model
from engine.hardware import device_name, resolve_precision
from engine.language import advise
from engine.progress import OnEvent, ProgressCallback, ShouldStop, announce
from engine.report import write_report
from engine.spec import JobSpec
from engine.tasks import TrainingRecipe, get_task

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
MODEL = "model"


class TrainingStopped(RuntimeError):
    """Training ended early because `should_stop()` asked it to; no model was written."""


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
    """Fine-tune `spec.base_model` on `spec.data`; write spec.json, model/, report.json and report.md to output_dir.

    With `resume=True` an interrupted run continues from its last checkpoint in output_dir. Raises DataError for
    unusable data and TrainingStopped when `should_stop()` ended it early.
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
    model = recipe.build_model(spec, model_path, prepared.labels)
    frozen = freeze_embeddings(model, params.freeze_embeddings)
    precision = resolve_precision(params.precision)
    args = _training_args(spec, recipe, output_dir / CHECKPOINTS, precision, n_train=len(prepared.train))
    progress = ProgressCallback(on_event, should_stop, samples_per_step=params.batch_size)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=prepared.train,
        eval_dataset=prepared.validation,
        data_collator=recipe.collator(tokenizer, pad_to_multiple_of=8 if precision != "fp32" else None),
        compute_metrics=recipe.compute_metrics(prepared.labels),
        callbacks=[progress],
    )
    trainer.remove_callback(PrinterCallback)  # progress leaves through on_event, not stdout

    resume_from = get_last_checkpoint(str(args.output_dir)) if resume and (output_dir / CHECKPOINTS).is_dir() else None
    started = time.monotonic()
    announce(on_event, "training")
    outcome = trainer.train(resume_from_checkpoint=resume_from)
    wall_seconds = time.monotonic() - started
    if progress.stopped:
        raise TrainingStopped(f"training stopped on request at step {trainer.state.global_step}")

    train_info = _train_info(trainer, recipe.metric_for_best_model, outcome.metrics, wall_seconds, precision)
    train_info.update(
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        total_parameters=sum(p.numel() for p in model.parameters()),
        frozen_embeddings=frozen > 0,
    )
    announce(on_event, "evaluating")  # the test split, and for chat the base model beside the tuned one
    report = recipe.report(spec, trainer.model, tokenizer, prepared, train_info)
    announce(on_event, "reporting")
    model_dir = recipe.save(trainer.model, tokenizer, output_dir)
    write_report(report, output_dir, renderer=task.render_markdown)
    shutil.rmtree(output_dir / CHECKPOINTS, ignore_errors=True)  # the best one is model/ now
    return TrainResult(output_dir=output_dir, model_dir=model_dir, report=report)


def freeze_embeddings(model: torch.nn.Module, requested: bool | None) -> int:
    """Stop the input embeddings from training when asked, or (unset) when they are most of the weights.

    Returns how many weights were frozen. Tied output embeddings (a causal LM's head) freeze with them.
    """
    embeddings = model.get_input_embeddings()
    if embeddings is None:
        return 0
    size = embeddings.weight.numel()
    total = sum(p.numel() for p in model.parameters())
    if requested is False or (requested is None and size < 0.5 * total):
        return 0
    embeddings.weight.requires_grad_(False)
    return size


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


def _training_args(
    spec: JobSpec, recipe: TrainingRecipe, checkpoint_dir: Path, precision: str, *, n_train: int
) -> TrainingArguments:
    params = spec.params
    steps_per_epoch = math.ceil(n_train / params.batch_size)
    total_steps = math.ceil(steps_per_epoch * params.epochs)
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=params.epochs,
        learning_rate=params.learning_rate,
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=max(params.batch_size, 32),
        weight_decay=params.weight_decay,
        warmup_steps=params.warmup_ratio,  # transformers 5: a value below 1 is a ratio of the total steps
        seed=params.seed,
        data_seed=params.seed,
        eval_strategy="epoch",
        save_strategy="epoch",  # one checkpoint per epoch is what a resumed job restarts from
        save_total_limit=1,  # with load_best_model_at_end the best one is kept as well
        load_best_model_at_end=True,
        metric_for_best_model=recipe.metric_for_best_model,
        greater_is_better=recipe.greater_is_better,
        logging_strategy="steps",
        logging_steps=max(1, total_steps // 50),
        logging_first_step=True,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=device_name() == "cpu",
        train_sampling_strategy="group_by_length",  # less padding per batch: faster on CPU
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=device_name() == "cuda",
    )


def _train_info(trainer: Trainer, best_metric: str, metrics: dict, wall_seconds: float, precision: str) -> dict:
    history = trainer.state.log_history
    n_train = len(trainer.train_dataset)
    key = f"eval_{best_metric}"
    evals = [h for h in history if key in h]
    pick = max if trainer.args.greater_is_better else min
    best = pick(evals, key=lambda h: h[key]) if evals else None
    return {
        "epochs": trainer.args.num_train_epochs,
        "steps": trainer.state.global_step,
        "train_samples": n_train,
        "wall_seconds": round(wall_seconds, 2),
        "samples_per_second": round(metrics.get("train_samples_per_second", n_train / max(wall_seconds, 1e-9)), 2),
        "final_train_loss": round(float(metrics["train_loss"]), 4) if "train_loss" in metrics else None,
        "best_epoch": best.get("epoch") if best else None,
        f"best_validation_{best_metric}": round(float(best[key]), 4) if best else None,
        "precision": precision,
        "device": device_name(),
        "threads": torch.get_num_threads(),
        "history": [{k: v for k, v in h.items() if k != "total_flos"} for h in history],
    }
