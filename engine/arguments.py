"""A job's recipe as the Trainer reads it: TrainingArguments (optimizer, schedule, accumulation, evaluation), the
early-stopping callback that remembers where and why it stopped, and TensorBoard events in the job's folder."""

from __future__ import annotations

import functools
import logging
import math
import os
from pathlib import Path
from typing import Any

from transformers import EarlyStoppingCallback, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.integrations import TensorBoardCallback

from engine.hardware import device_name
from engine.params import TrainingParams
from engine.paths import model_cache

log = logging.getLogger(__name__)

OPTIMIZERS = {"adamw": "adamw_torch_fused", "adafactor": "adafactor"}  # spec name -> TrainingArguments.optim
TENSORBOARD = "tensorboard"  # the job folder's TensorBoard event files: `tensorboard --logdir <job>/tensorboard`


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
        report_to="none",  # TensorBoard joins as a callback that knows the job's folder: see tensorboard_callbacks
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=device_name() == "cuda",
    )


def _schedule_kwargs(params: TrainingParams) -> dict[str, Any]:
    return {"num_cycles": params.schedule_cycles} if params.schedule == "cosine_with_restarts" else {}


class JobTensorBoard(TensorBoardCallback):
    """transformers' TensorBoard callback writing into a folder of the job, a search's trials each in a sub-folder.

    The Trainer's own `report_to="tensorboard"` takes its folder from the process-wide TENSORBOARD_LOGGING_DIR (or a
    time-stamped one under the checkpoints, which the job deletes) and puts every trial of a search in the same
    folder; this one gets its folder from the job, and otherwise logs exactly what the Trainer's would.
    """

    def __init__(self, log_dir: Path):
        super().__init__()
        self.log_dir = Path(log_dir)
        self.logging_dir = str(self.log_dir)  # also for an evaluation logged before any training
        self.trials = 0
        self._purge_step: int | None = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any):
        if state.is_hyper_param_search:
            # The parent only renames a trial's folder when the search names its trials (hp_name), which ours does
            # not; so the folder chosen here is the one it writes to.
            self.logging_dir = str(self.log_dir / f"trial-{self.trials}")
            self.trials += 1
        # TensorBoard hides what an earlier attempt logged from the purge step on, so a retried job's lines do not
        # overlap: everything for a fresh start, what came after the checkpoint for a resumed one (the checkpoint's
        # own step was logged before it was saved).
        self._purge_step = state.global_step + 1 if state.global_step else 0
        super().on_train_begin(args, state, control, **kw)

    def _init_summary_writer(self, args: TrainingArguments) -> None:
        self.tb_writer = self._SummaryWriter(log_dir=self.logging_dir, purge_step=self._purge_step)


@functools.cache
def _tensorboard_installed() -> bool:
    try:
        TensorBoardCallback()  # imports its SummaryWriter (torch's, else tensorboardX's); writes nothing yet
    except (RuntimeError, ImportError) as exc:  # neither is installed, or the one there does not import
        log.info("no TensorBoard events for jobs (%s); pip install tensorboard for them", exc)
        return False
    return True


def tensorboard_callbacks(log_dir: Path) -> list[TrainerCallback]:
    """The callback that writes a training run's TensorBoard events into `log_dir`; none without tensorboard."""
    return [JobTensorBoard(log_dir)] if _tensorboard_installed() else []


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
