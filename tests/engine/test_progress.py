"""Time left is estimated from the steps after warm-up, plus the evaluations still to come."""

from __future__ import annotations

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from engine import progress
from engine.progress import ProgressCallback


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_slow_steps_and_evaluations_do_not_skew_the_time_left(monkeypatch: pytest.MonkeyPatch):
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    events = []
    callback = ProgressCallback(events.append, None, samples_per_step=8)
    args, control = TrainingArguments(output_dir="unused", report_to="none"), TrainerControl()
    state = TrainerState(max_steps=40, num_train_epochs=2, global_step=0, epoch=0.0)
    callback.on_train_begin(args, state, control)

    def step(seconds: float) -> None:
        callback.on_step_begin(args, state, control)
        clock.now += seconds
        state.global_step += 1
        state.epoch = state.global_step / 20
        callback.on_step_end(args, state, control)

    step(30.0)  # the first step: loading kernels, allocating
    assert events[-1].eta_seconds is None  # no honest estimate yet
    step(8.0)
    for _ in range(8):
        step(2.0)
    # 30 steps left at 2 s each, two evaluations not yet timed: one minute, not the 13 minutes step 1 suggested.
    assert events[-1].eta_seconds == pytest.approx(60.0)
    assert events[-1].samples_per_second == pytest.approx(4.0)
    for _ in range(10):
        step(2.0)
    callback.on_epoch_end(args, state, control)
    clock.now += 15.0  # the end-of-epoch evaluation
    callback.on_evaluate(args, state, control, metrics={"eval_loss": 0.4})
    clock.now += 5.0  # a checkpoint: neither a step nor an evaluation
    step(2.0)
    # 19 steps at 2 s, and the last evaluation at 15 s.
    assert events[-1].eta_seconds == pytest.approx(19 * 2.0 + 15.0)
