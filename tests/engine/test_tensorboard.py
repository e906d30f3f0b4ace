"""TensorBoard event files in the job folder: one folder per training run, retries hide what they replace, and no
tensorboard means no events rather than a failed job. (The real training run is checked in test_train.py.)"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from transformers import TrainerControl, TrainerState, TrainingArguments

from engine import arguments
from engine.arguments import JobTensorBoard, tensorboard_callbacks


@pytest.fixture
def args(tmp_path: Path) -> TrainingArguments:
    return TrainingArguments(output_dir=str(tmp_path / "checkpoints"), report_to="none", use_cpu=True)


def _run(log_dir: Path, args: TrainingArguments, losses: dict[int, float], *, start: int = 0, search: bool = False):
    """One training run as the Trainer drives its callbacks: begin, a log per step, end."""
    callback = JobTensorBoard(log_dir)
    state, control = TrainerState(global_step=start), TrainerControl()
    state.is_hyper_param_search = search
    callback.on_train_begin(args, state, control)
    for step, loss in losses.items():
        state.global_step = step
        callback.on_log(args, state, control, logs={"loss": loss, "learning_rate": 1e-4, "epoch": step / 10})
    callback.on_train_end(args, state, control)
    return callback


def _losses(folder: Path) -> dict[int, float]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return {event.step: round(event.value, 4) for event in events.Scalars("train/loss")}


def test_a_search_writes_each_trial_into_its_own_folder(tmp_path: Path, args):
    log_dir = tmp_path / "tensorboard"
    callback = JobTensorBoard(log_dir)
    control = TrainerControl()
    for trial, loss in enumerate((0.9, 0.4)):  # one callback sees every trial: the search reuses its Trainer
        state = TrainerState()
        state.is_hyper_param_search = True
        callback.on_train_begin(args, state, control)
        state.global_step = 1
        callback.on_log(args, state, control, logs={"loss": loss})
        callback.on_train_end(args, state, control)
        assert _losses(log_dir / f"trial-{trial}") == {1: loss}
    assert not (tmp_path / "checkpoints").exists()  # nothing under the checkpoints, which the job deletes


def test_a_fresh_start_hides_an_earlier_attempt_and_a_resume_keeps_what_came_before(tmp_path: Path, args):
    log_dir = tmp_path / "tensorboard"
    _run(log_dir, args, {1: 5.0, 2: 4.0, 3: 3.0})
    time.sleep(1.1)  # event files are named by the second: a later file must sort after the earlier one
    _run(log_dir, args, {1: 2.0, 2: 1.5})  # the job ran again from the start
    assert _losses(log_dir) == {1: 2.0, 2: 1.5}
    time.sleep(1.1)
    _run(log_dir, args, {3: 0.5}, start=2)  # resumed from the checkpoint at step 2
    assert _losses(log_dir) == {1: 2.0, 2: 1.5, 3: 0.5}


@pytest.fixture
def no_tensorboard(monkeypatch: pytest.MonkeyPatch):
    def missing(self, tb_writer=None):
        raise RuntimeError("TensorBoardCallback requires tensorboard to be installed")

    monkeypatch.setattr(arguments.TensorBoardCallback, "__init__", missing)
    arguments._tensorboard_installed.cache_clear()
    yield
    arguments._tensorboard_installed.cache_clear()  # the next test sees the real installation again


def test_without_tensorboard_no_callback_and_one_log_line(tmp_path: Path, no_tensorboard, caplog):
    with caplog.at_level(logging.INFO, logger="engine.arguments"):
        assert tensorboard_callbacks(tmp_path / "a") == []
        assert tensorboard_callbacks(tmp_path / "b") == []
    lines = [record.getMessage() for record in caplog.records if record.name == "engine.arguments"]
    assert len(lines) == 1 and "pip install tensorboard" in lines[0]


def test_with_tensorboard_the_callback_writes_where_it_is_told(tmp_path: Path):
    [callback] = tensorboard_callbacks(tmp_path / "tensorboard" / "member-2")
    assert isinstance(callback, JobTensorBoard)
    assert callback.logging_dir == str(tmp_path / "tensorboard" / "member-2")
