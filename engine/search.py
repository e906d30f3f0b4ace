"""The learning-rate search: Optuna trials of one job through `Trainer.hyperparameter_search`, bad trials pruned, and
the best trial's model (the best checkpoint of the best trial) kept as the job's model."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from engine.params import SearchSpec, TrainingParams
from engine.progress import ShouldStop


class SearchStopped(RuntimeError):
    """`should_stop()` turned true between trials."""


@dataclass
class SearchOutcome:
    """The best trial: its knobs, model weights, training history and summary, and every trial for the report."""

    best_params: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    history: list[dict[str, Any]]
    steps: int
    trials: list[dict[str, Any]] = field(default_factory=list)
    best_trial: int = 0  # the trial's number in the study
    best_run: int = 0  # which training run of the job it was (0 for the first trial)
    stopped_by_budget: bool = False
    score: float | None = None  # its best validation score
    # With search.ensemble > 1: the next best complete trials, best first, that may answer together with this one.
    runners_up: list[SearchOutcome] = field(default_factory=list)

    @property
    def train_metrics(self) -> dict[str, Any]:
        """The best trial's closing summary (train_loss, samples per second), as `Trainer.train` returns it."""
        return next((h for h in reversed(self.history) if "train_loss" in h), {})


class TrialLog(TrainerCallback):
    """Records each trial (knobs, scores, pruned or not, time) and keeps the weights of the best `keep` so far (the
    best alone, unless the search's ensemble asks for more: each is a copy of the model in memory).

    A trial's score is its best validation score, the checkpoint that load_best_model_at_end keeps, so the study
    compares trials by the model each one would hand over.
    """

    def __init__(self, metric: str, greater_is_better: bool, keep: int = 1):
        self.metric = metric
        self.greater = greater_is_better
        self.keep = keep
        self.trainer: Trainer | None = None
        self.trials: list[dict[str, Any]] = []
        self.kept: list[SearchOutcome] = []  # best first
        self._started = 0.0

    @property
    def best(self) -> SearchOutcome | None:
        """The best complete trial so far (None before one completed)."""
        return self.kept[0] if self.kept else None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any):
        self._started = time.monotonic()
        self.trials.append({"number": len(self.trials), **(state.trial_params or {}), "scores": []})

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, metrics=None, **kw):
        score = (metrics or {}).get(f"eval_{self.metric}")
        if score is not None and self.trials:
            self.trials[-1]["scores"].append(round(float(score), 4))

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any):
        trial = getattr(self.trainer, "_trial", None)
        # Called just before Optuna's TrialPruned is raised, and should_prune() still answers as it did then.
        pruned = bool(trial is not None and hasattr(trial, "should_prune") and trial.should_prune())
        record = self.trials[-1]
        record.update(
            number=getattr(trial, "number", record["number"]),
            state="pruned" if pruned else "complete",
            score=None if state.best_metric is None else round(float(state.best_metric), 4),
            steps=state.global_step,
            seconds=round(time.monotonic() - self._started, 1),
        )
        if not pruned and state.best_metric is not None:
            self.trainer.objective = float(state.best_metric)  # the best checkpoint's score, not the last one's
            if self._better(state.best_metric):
                self._keep(kw["model"], state, record)
        run_dir = Path(args.output_dir) / f"run-{record['number']}"
        shutil.rmtree(run_dir, ignore_errors=True)  # this trial's checkpoints: its best weights are kept in memory

    def _better(self, score: float) -> bool:
        # Whether a trial with this score is among the best `keep` so far (ties go to the earlier trial).
        if len(self.kept) < self.keep:
            return True
        worst = self.kept[-1].score
        return worst is None or (score > worst if self.greater else score < worst)

    def _keep(self, model: torch.nn.Module, state: TrainerState, record: dict[str, Any]) -> None:
        weights = {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}
        outcome = SearchOutcome(
            best_params=dict(state.trial_params or {}),
            model_state=weights,
            history=[dict(h) for h in state.log_history],
            steps=state.global_step,
            best_trial=record["number"],
            best_run=len(self.trials) - 1,  # index into the trials, as the callbacks count training runs
            score=float(state.best_metric),
        )
        sign = -1.0 if self.greater else 1.0
        self.kept = sorted([*self.kept, outcome], key=lambda o: (sign * (o.score or 0.0), o.best_run))[: self.keep]


def hp_space(search: SearchSpec, should_stop: ShouldStop | None) -> Callable[[Any], dict[str, Any]]:
    """Optuna's search space from the spec; its names are the TrainingArguments fields the Trainer sets per trial,
    and the trial's own names (learning_rate, batch_size, epochs, warmup_ratio) are the spec's."""

    def space(trial: Any) -> dict[str, Any]:
        if should_stop is not None and should_stop():
            raise SearchStopped("the search stopped on request")
        low, high = search.learning_rate
        chosen = {"learning_rate": trial.suggest_float("learning_rate", low, high, log=True)}
        if search.batch_sizes:
            chosen["per_device_train_batch_size"] = trial.suggest_categorical("batch_size", list(search.batch_sizes))
        if search.epochs:
            chosen["num_train_epochs"] = trial.suggest_float("epochs", *search.epochs)
        if search.warmup_ratio:
            chosen["warmup_steps"] = trial.suggest_float("warmup_ratio", *search.warmup_ratio)  # below 1: a ratio
        return chosen

    return space


def first_trial(search: SearchSpec, params: TrainingParams) -> dict[str, Any]:
    """The job's own knobs, where the search's ranges hold them: tried first, so the search compares its samples
    with the configuration the user (or the task's defaults) chose and cannot end worse than it on validation."""
    own: dict[str, Any] = {}
    low, high = search.learning_rate
    if low <= params.learning_rate <= high:
        own["learning_rate"] = params.learning_rate
    if search.batch_sizes and params.batch_size in search.batch_sizes:
        own["batch_size"] = params.batch_size
    if search.epochs and search.epochs[0] <= params.epochs <= search.epochs[1]:
        own["epochs"] = params.epochs
    if search.warmup_ratio and search.warmup_ratio[0] <= params.warmup_ratio <= search.warmup_ratio[1]:
        own["warmup_ratio"] = params.warmup_ratio
    return own


def run_search(
    trainer: Trainer, search: SearchSpec, log: TrialLog, *, params: TrainingParams, should_stop: ShouldStop | None
) -> SearchOutcome:
    """Run the trials inside this job; the outcome holds the best trial's weights and every trial's record."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    log.trainer = trainer
    if search.warmup_ratio:
        trainer.args.warmup_steps = float(search.warmup_ratio[0])  # a float, so the Trainer casts trials to ratios
    # Never pruned at its first evaluation: a first epoch's score says little about where a learning rate ends up.
    batches = math.ceil(len(trainer.train_dataset) / trainer.args.per_device_train_batch_size)
    first_evaluation = (
        params.eval_steps if params.eval_strategy == "steps" else batches // params.gradient_accumulation_steps
    )
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=max(1, first_evaluation))
        if search.prune
        else optuna.pruners.NopPruner()
    )
    direction = "maximize" if log.greater else "minimize"
    sampler = optuna.samplers.TPESampler(seed=params.seed, n_startup_trials=min(4, search.trials))
    # A study of our own, handed to the Trainer's by name, so that the job's own knobs are its first trial.
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="job", direction=direction, sampler=sampler, pruner=pruner)
    if first_trial(search, params):
        study.enqueue_trial(first_trial(search, params))
    budget = search.time_budget_minutes * 60 if search.time_budget_minutes else None
    trainer.hyperparameter_search(
        hp_space=hp_space(search, should_stop),
        compute_objective=lambda metrics: metrics[f"eval_{log.metric}"],
        n_trials=search.trials,
        direction=direction,
        backend="optuna",
        sampler=sampler,
        pruner=pruner,
        storage=storage,
        study_name="job",
        load_if_exists=True,
        timeout=budget,
    )
    if log.best is None:
        raise ValueError(
            "every trial of the search was pruned or scored nothing; widen search.learning_rate or turn prune off"
        )
    outcome = log.best
    outcome.trials = [dict(t) for t in log.trials]
    outcome.runners_up = log.kept[1:]
    outcome.stopped_by_budget = budget is not None and len(log.trials) < search.trials
    return outcome
