"""A job's recipe as the Trainer reads it: TrainingArguments (optimizer, schedule, accumulation, evaluation) and the
early-stopping callback that remembers where and why it stopped."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from transformers import EarlyStoppingCallback, TrainerControl, TrainerState, TrainingArguments

from engine.hardware import device_name
from engine.params import TrainingParams
from engine.paths import model_cache

OPTIMIZERS = {"adamw": "adamw_torch_fused", "adafactor": "adafactor"}  # spec name -> TrainingArguments.optim


def optimizer_steps(params: TrainingParams, n_train: int) -> int:
    """How many optimizer updates a job makes: batches per epoch / accumulation, times epochs."""
    batches = math.ceil(n_train / params.batch_size)
    return math.ceil(max(1, batches // params.gradient_accumulation_steps) * params.epochs)


COMPILE_MIN_STEPS = 300  # below this a compile's warm-up (about a minute) costs more than it saves on a GPU


def compiles(params: TrainingParams, total_steps: int) -> bool:
    """Whether the job runs torch.compile: asked for, or 'auto' on a GPU for a job long enough to pay it back."""
    if params.compile != "auto":
        return params.compile == "on"
    return device_name() == "cuda" and total_steps >= COMPILE_MIN_STEPS


def compile_cache() -> Path:
    """Inductor's cache of compiled graphs, beside the converted models, so the next job with the model starts warm."""
    return model_cache().parent / "inductor"


def training_args(
    params: TrainingParams,
    metric_for_best_model: str,
    greater_is_better: bool,
    checkpoint_dir: Path,
    precision: str,
    *,
    n_train: int,
    prediction_loss_only: bool = False,
) -> TrainingArguments:
    """TrainingArguments for a job: every recipe knob goes through the Trainer, none through a loop of our own."""
    total_steps = optimizer_steps(params, n_train)
    # transformers 5: a warm-up below 1 is a ratio of the total steps, a whole number is steps.
    warmup = params.warmup_steps if params.warmup_steps is not None else params.warmup_ratio
    by_steps = params.eval_strategy == "steps"
    compiled = compiles(params, total_steps)
    if compiled:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(compile_cache()))
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=params.epochs,
        learning_rate=params.learning_rate,
        optim=OPTIMIZERS[params.optimizer],
        lr_scheduler_type=params.schedule,
        lr_scheduler_kwargs=_schedule_kwargs(params),
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=max(params.batch_size, 32),
        gradient_accumulation_steps=params.gradient_accumulation_steps,
        gradient_checkpointing=params.gradient_checkpointing,
        # Non-reentrant checkpointing works with frozen embeddings and adapters (no input needing grad).
        gradient_checkpointing_kwargs={"use_reentrant": False} if params.gradient_checkpointing else None,
        weight_decay=params.weight_decay,
        max_grad_norm=params.max_grad_norm,
        warmup_steps=warmup,
        # (Our own loss, for class weights or accumulation, smooths labels itself and takes precedence.)
        label_smoothing_factor=params.label_smoothing,
        seed=params.seed,
        data_seed=params.seed,
        eval_strategy=params.eval_strategy,
        eval_steps=params.eval_steps if by_steps else None,
        save_strategy=params.eval_strategy,  # a checkpoint at each evaluation: the best one is what is kept
        save_steps=params.eval_steps if by_steps else None,
        save_total_limit=1,  # with load_best_model_at_end the best one is kept as well
        load_best_model_at_end=True,
        metric_for_best_model=metric_for_best_model,
        greater_is_better=greater_is_better,
        logging_strategy="steps",
        logging_steps=max(1, total_steps // 50),
        logging_first_step=True,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=device_name() == "cpu",
        train_sampling_strategy="group_by_length",  # less padding per batch: faster on CPU
        torch_compile=compiled,
        prediction_loss_only=prediction_loss_only,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=device_name() == "cuda",
    )


def _schedule_kwargs(params: TrainingParams) -> dict[str, Any]:
    return {"num_cycles": params.schedule_cycles} if params.schedule == "cosine_with_restarts" else {}


class EarlyStopping(EarlyStoppingCallback):
    """The Trainer's early stopping, which also remembers at which step it stopped and why (for the report)."""

    def __init__(self, params: TrainingParams, metric_name: str):
        super().__init__(params.early_stopping_patience, params.early_stopping_threshold)
        self.metric_name = metric_name
        self.stops: list[dict[str, Any] | None] = []  # per training run (each trial of a search is one)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any):
        super().on_train_begin(args, state, control, **kw)
        self.early_stopping_patience_counter = 0  # each trial of a search starts its own count
        self.stops.append(None)

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, metrics, **kw):
        super().on_evaluate(args, state, control, metrics, **kw)
        stopping = self.early_stopping_patience_counter >= self.early_stopping_patience
        # Patience running out at the last evaluation ends nothing early.
        if self.stops and self.stops[-1] is None and stopping and state.global_step < state.max_steps:
            gain = f" by more than {self.early_stopping_threshold:g}" if self.early_stopping_threshold else ""
            self.stops[-1] = {
                "step": state.global_step,
                "epoch": round(state.epoch or 0.0, 2),
                "of_steps": state.max_steps,
                "reason": f"validation {self.metric_name} did not improve{gain} for "
                f"{self.early_stopping_patience} evaluation(s) in a row",
            }


def recipe_callbacks(params: TrainingParams, metric_name: str) -> list[EarlyStopping]:
    """The callbacks the job's knobs ask for: early stopping when a patience is set."""
    return [EarlyStopping(params, metric_name)] if params.early_stopping_patience else []
