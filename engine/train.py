"""Fine-tune a text classifier: data -> tokenizer -> model -> Trainer -> report, written into one output folder."""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    PrinterCallback,
    Trainer,
    TrainingArguments,
)
from transformers.trainer_utils import get_last_checkpoint

from engine.catalog import resolve_model
from engine.data import ClassificationData, load_classification_data
from engine.hardware import device_name, resolve_precision
from engine.metrics import softmax, trainer_compute_metrics
from engine.predict import predict_logits
from engine.progress import OnEvent, ProgressCallback, ShouldStop
from engine.report import build_classification_report, tfidf_baseline, write_report
from engine.spec import JobSpec

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
    transformers.set_seed(params.seed)  # before the classifier head is initialised, so runs repeat exactly

    model_path = resolve_model(spec.base_model, task=spec.task)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    data = load_classification_data(spec.data, tokenizer=tokenizer, max_length=params.max_length, seed=params.seed)
    _start_output_dir(output_dir, spec, resume=resume)  # only once the data is known to be usable
    tokenized = _tokenize(data, tokenizer, params.max_length)

    model = AutoModelForSequenceClassification.from_pretrained(
        model_path,
        num_labels=len(data.labels),
        id2label=dict(enumerate(data.labels)),
        label2id={label: i for i, label in enumerate(data.labels)},
        ignore_mismatched_sizes=True,  # a base model that already has a head of another size gets a fresh one
    )
    precision = resolve_precision(params.precision)
    args = _training_args(spec, output_dir / CHECKPOINTS, precision, n_train=len(tokenized["train"]))
    progress = ProgressCallback(on_event, should_stop, samples_per_step=params.batch_size)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if precision != "fp32" else None),
        compute_metrics=trainer_compute_metrics(data.labels),
        callbacks=[progress],
    )
    trainer.remove_callback(PrinterCallback)  # progress leaves through on_event, not stdout

    resume_from = get_last_checkpoint(str(args.output_dir)) if resume and (output_dir / CHECKPOINTS).is_dir() else None
    started = time.monotonic()
    outcome = trainer.train(resume_from_checkpoint=resume_from)
    wall_seconds = time.monotonic() - started
    if progress.stopped:
        raise TrainingStopped(f"training stopped on request at step {trainer.state.global_step}")

    # Test-set predictions come from our own ordered loop, so each text stays paired with its prediction.
    model = trainer.model
    test_texts = list(data.test["text"])
    probs = softmax(predict_logits(model, tokenizer, test_texts, max_length=params.max_length))
    baseline = tfidf_baseline(
        list(data.train["text"]),
        list(data.train["label"]),
        test_texts,
        list(data.test["label"]),
        data.labels,
        seed=params.seed,
    )
    report = build_classification_report(
        task=spec.task,
        base_model=spec.base_model,
        labels=data.labels,
        test_texts=test_texts,
        y_true=list(data.test["label"]),
        probs=probs,
        baseline=baseline,
        data_summary=data.summary,
        train_info=_train_info(trainer, outcome.metrics, wall_seconds, precision, len(tokenized["train"])),
    )

    model_dir = _save_model(trainer, tokenizer, output_dir)
    write_report(report, output_dir)
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


def _tokenize(data: ClassificationData, tokenizer, max_length: int) -> datasets.DatasetDict:
    # No padding here: DataCollatorWithPadding pads each batch to its own longest text.
    def encode(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(list(batch["text"]), truncation=True, max_length=max_length)

    splits = datasets.DatasetDict(train=data.train, validation=data.validation, test=data.test)
    return splits.map(encode, batched=True, remove_columns=["text"], desc="Tokenizing")


def _training_args(spec: JobSpec, checkpoint_dir: Path, precision: str, *, n_train: int) -> TrainingArguments:
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
        metric_for_best_model="macro_f1",
        greater_is_better=True,
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


def _train_info(trainer: Trainer, metrics: dict, wall_seconds: float, precision: str, n_train: int) -> dict:
    history = trainer.state.log_history
    evals = [h for h in history if "eval_macro_f1" in h]
    best = max(evals, key=lambda h: h["eval_macro_f1"]) if evals else None
    return {
        "epochs": trainer.args.num_train_epochs,
        "steps": trainer.state.global_step,
        "train_samples": n_train,
        "wall_seconds": round(wall_seconds, 2),
        "samples_per_second": round(metrics.get("train_samples_per_second", n_train / max(wall_seconds, 1e-9)), 2),
        "final_train_loss": round(float(metrics["train_loss"]), 4) if "train_loss" in metrics else None,
        "best_epoch": best.get("epoch") if best else None,
        "best_validation_macro_f1": round(float(best["eval_macro_f1"]), 4) if best else None,
        "precision": precision,
        "device": device_name(),
        "threads": torch.get_num_threads(),
        "history": [{k: v for k, v in h.items() if k != "total_flos"} for h in history],
    }


def _save_model(trainer: Trainer, tokenizer, output_dir: Path) -> Path:
    # Write beside the final folder, then rename: a crash never leaves a half-written model/ behind.
    final = output_dir / MODEL
    partial = output_dir / f".{MODEL}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    trainer.model.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    os.replace(partial, final)
    return final
