"""Progress events that leave the engine as plain data, and the Trainer callback that emits them."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

EventKind = Literal["phase", "start", "step", "log", "eval", "end"]
# What a job does, in order; "phase" events say when the next one begins.
PHASES = ("preparing", "loading", "training", "evaluating", "reporting")  # a training job's, in order
EXPORT_PHASES = ("loading", "exporting", "evaluating", "reporting")  # an export job's
WARMUP_STEPS = 2  # steps left out of the speed estimate


@dataclass(frozen=True)
class ProgressEvent:
    """One progress point: where training is, how fast it goes, and any logged or evaluated numbers."""

    kind: EventKind
    step: int
    total_steps: int
    epoch: float
    loss: float | None = None
    learning_rate: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    samples_per_second: float | None = None
    eta_seconds: float | None = None
    elapsed_seconds: float = 0.0
    phase: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON stores and queues."""
        return asdict(self)


OnEvent = Callable[[ProgressEvent], None]


def announce(on_event: OnEvent | None, phase: str) -> None:
    """Tell `on_event` that the job has moved on to `phase` (one of PHASES or EXPORT_PHASES)."""
    if on_event is not None:
        on_event(ProgressEvent(kind="phase", step=0, total_steps=0, epoch=0.0, phase=phase))


ShouldStop = Callable[[], bool]


def trial_phase(trial: int, trials: int) -> str:
    """The phase of a search's trial: 'training: trial 2 of 6' (the training phase, one trial of several)."""
    return stage_phase(f"trial {trial} of {trials}")


def stage_phase(stage: str) -> str:
    """The phase of one training run of several: 'training: member 2 of 3', 'training: plain recipe ...'."""
    return f"training: {stage}"


class ProgressCallback(TrainerCallback):
    """Forwards Trainer progress to `on_event` and stops training cooperatively when `should_stop()` turns true."""

    def __init__(
        self,
        on_event: OnEvent | None,
        should_stop: ShouldStop | None,
        samples_per_step: int,
        trials: int | None = None,
    ):
        self.on_event = on_event
        self.should_stop = should_stop
        self.samples_per_step = samples_per_step
        self.trials = trials  # a search's number of trials: each one's start is announced as a phase
        self.trial = 0
        self.stopped = False
        self._start = time.monotonic()
        self._first_step = 0
        self._step_began = 0.0
        self._steps = 0  # training steps timed, warm-up steps included
        self._warm_seconds = 0.0  # the time of the steps after warm-up: a running sum, no per-step list to add up
        self._epoch_ended: float | None = None
        self._eval_seconds = 0.0  # the last evaluation's time: each one still to come costs about as much

    def _emit(self, state: TrainerState, kind: EventKind, **extra: Any) -> None:
        if self.on_event is None:
            return
        elapsed = time.monotonic() - self._start
        # The first steps are slow (allocation, kernel choice) and evaluations are not steps: the rate is that of
        # the steps after warm-up, so step 1 does not promise 20 minutes for a 6-minute job.
        warm = self._steps - WARMUP_STEPS
        rate = warm / self._warm_seconds if warm > 0 and self._warm_seconds > 0 else None
        eta = None
        if rate:
            evaluations = max(0, math.ceil(state.num_train_epochs or 0) - math.floor(state.epoch or 0))
            eta = (state.max_steps - state.global_step) / rate + evaluations * self._eval_seconds
        self.on_event(
            ProgressEvent(
                kind=kind,
                step=state.global_step,
                total_steps=state.max_steps,
                epoch=round(state.epoch or 0.0, 4),
                samples_per_second=round(rate * self.samples_per_step, 2) if rate else None,
                eta_seconds=round(eta, 1) if eta is not None else None,
                elapsed_seconds=round(elapsed, 2),
                **extra,
            )
        )

    def _check_stop(self, control: TrainerControl) -> None:
        if self.should_stop is not None and self.should_stop():
            self.stopped = True
            control.should_training_stop = True
            # A stopped job must not spend time evaluating or checkpointing on its way out.
            control.should_evaluate = False
            control.should_save = False

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any):
        self._start = time.monotonic()
        self._first_step = state.global_step
        self._steps, self._warm_seconds = 0, 0.0  # a trial of a search may run at another batch size
        if self.trials:
            self.trial += 1
            announce(self.on_event, trial_phase(self.trial, self.trials))
        self._emit(state, "start")
        self._check_stop(control)

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any):
        self._step_began = time.monotonic()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any):
        self._steps += 1
        if self._steps > WARMUP_STEPS:
            self._warm_seconds += time.monotonic() - self._step_began
        self._emit(state, "step")
        self._check_stop(control)

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any):
        self._epoch_ended = time.monotonic()
        # Leaving the loop early still ends the epoch, where the epoch strategies ask for an evaluation and a
        # checkpoint: a stopped job skips both (the checkpoint would also rotate out the last whole epoch's).
        if self.stopped:
            control.should_evaluate = False
            control.should_save = False

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs=None, **kw: Any):
        logs = logs or {}
        if "loss" in logs:
            self._emit(state, "log", loss=float(logs["loss"]), learning_rate=_float_or_none(logs.get("learning_rate")))

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, metrics=None, **kw):
        numbers = {k.removeprefix("eval_"): float(v) for k, v in (metrics or {}).items() if _is_number(v)}
        if self._epoch_ended is not None:
            self._eval_seconds = time.monotonic() - self._epoch_ended
        self._emit(state, "eval", loss=numbers.get("loss"), metrics=numbers)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any):
        self._emit(state, "end")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _float_or_none(value: Any) -> float | None:
    return float(value) if _is_number(value) else None
