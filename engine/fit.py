"""One fine-tune: a model built for the spec, the Trainer that trains it (a search's trials too), and the numbers it
leaves for the report. `engine.train` runs it once; the techniques run it for each member, round or comparison."""

from __future__ import annotations

import dataclasses
import functools
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import PrinterCallback, Trainer
from transformers.trainer_utils import get_last_checkpoint

from engine.arguments import (
    TENSORBOARD,
    EarlyStopping,
    compiles,
    optimizer_steps,
    recipe_callbacks,
    tensorboard_callbacks,
    training_args,
)
from engine.dropout import cheapen_dropout
from engine.hardware import autocast_precision, device_name
from engine.precision import COMPUTE_DTYPE, pure_bf16, with_master_weights
from engine.progress import OnEvent, ProgressCallback, ShouldStop
from engine.regularise import class_weights, regularise, weighted_loss
from engine.search import SearchStopped, TrialLog, run_search
from engine.spec import JobSpec
from engine.tasks import Prepared, TrainingRecipe, get_task
from engine.techniques.adversarial import AdversarialTrainer
from engine.techniques.ensemble import EnsembleModel, validation_score

CHECKPOINTS = "checkpoints"
# A search's trials that answer together are those whose validation score is at most this far behind the best one.
ENSEMBLE_WITHIN = 0.05


class TrainingStopped(RuntimeError):
    """Training ended early because `should_stop()` asked it to; no model was written."""


@dataclass
class Context:
    """What every fine-tune of one job shares: its task's recipe, tokenizer, output folder, precision and the
    edges' callbacks."""

    recipe: TrainingRecipe
    tokenizer: Any
    output_dir: Path
    precision: str
    on_event: OnEvent | None
    should_stop: ShouldStop | None


@dataclass
class Fit:
    """A trained model (a search's trials that answer together are one EnsembleModel), its training's numbers for the
    report (train_info) and how long it took."""

    model: Any
    train_info: dict[str, Any]
    seconds: float


def fit(
    ctx: Context, spec: JobSpec, prepared: Prepared, model_path: str, *, resume: bool = False, run_name: str = ""
) -> Fit:
    """Fine-tune `model_path` on `prepared` with `spec`'s recipe (a search's best trial, for a search).

    TensorBoard events go to `tensorboard/` in the output folder, or to `tensorboard/<run_name>` for one of several
    runs of a job (an ensemble member, a self-training round).
    """
    params = spec.params
    transformers.set_seed(params.seed)  # before the new head is initialised: runs repeat, members differ by seed
    task = get_task(spec.task)
    recipe = ctx.recipe
    pure = pure_bf16(ctx.precision, task.architecture)
    # CPU dropout masks from raw random bits (engine/dropout.py); a compiled model gets inductor's own.
    cheap = device_name() == "cpu" and not compiles(params, optimizer_steps(params, len(prepared.train)))
    model_init = functools.partial(_build_model, recipe, spec, model_path, prepared.labels, pure, cheap)
    progress = ProgressCallback(
        ctx.on_event,
        ctx.should_stop,
        samples_per_step=params.batch_size * params.gradient_accumulation_steps,
        trials=spec.search.trials if spec.search else None,
    )
    stopping = recipe_callbacks(params, task.headline_name)
    trial_log = (
        TrialLog(recipe.metric_for_best_model, recipe.greater_is_better, keep=spec.search.ensemble)
        if spec.search
        else None
    )
    events = tensorboard_callbacks(ctx.output_dir / TENSORBOARD / run_name)
    callbacks = [progress, *stopping, *([trial_log] if trial_log else []), *events]
    checkpoints = ctx.output_dir / CHECKPOINTS
    if not resume:  # an earlier run of the same job (a member, a round) must not lend this one its checkpoints
        shutil.rmtree(checkpoints, ignore_errors=True)
    # Evaluation batches rows of like length (the metrics do not depend on the order): less padding to compute.
    prepared = dataclasses.replace(prepared, validation=by_length(prepared.validation))
    # bf16 weights need no autocast: the Trainer runs as in fp32, and the optimizer it builds steps fp32 masters.
    autocast = "fp32" if pure else autocast_precision(ctx.precision)
    trainer = _trainer(spec, recipe, prepared, ctx.tokenizer, model_init, ctx.output_dir, autocast, callbacks)
    if pure:
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(trainer.args)
        trainer.optimizer_cls_and_kwargs = (with_master_weights(optimizer_cls), optimizer_kwargs)
    started = time.monotonic()
    if spec.search:
        run, spec = _search(trainer, spec, trial_log, model_init, ctx, prepared)
    else:
        resume_from = get_last_checkpoint(str(checkpoints)) if resume and checkpoints.is_dir() else None
        outcome = trainer.train(resume_from_checkpoint=resume_from)
        run = Run(trainer.state.log_history, trainer.state.global_step, outcome.metrics)
    seconds = time.monotonic() - started
    if progress.stopped:
        raise TrainingStopped(f"training stopped on request at step {trainer.state.global_step}")
    train_info = _train_info(run, spec, len(prepared.train), recipe, seconds, ctx.precision)
    run_index = run.search["best_run"] if run.search else -1  # a search's kept trial, else the one run
    train_info.update(_parameters(trainer.model), stopped_early=_stopped(stopping, run_index), search=run.search)
    train_info["bf16_weights"] = pure  # pure bf16 with fp32 masters, rather than autocast over fp32 weights
    train_info["cheap_dropout"] = cheap  # dropout masks from raw random bits (engine/dropout.py)
    return Fit(trainer.model, train_info, seconds)


@dataclass
class Run:
    """What the training that made the job's model left behind: its log, its steps and its closing summary."""

    history: list[dict[str, Any]]
    steps: int
    metrics: dict[str, Any]
    search: dict[str, Any] | None = None  # the trials, for a search


def _build_model(
    recipe: TrainingRecipe,
    spec: JobSpec,
    model_path: str,
    labels: list[str],
    pure: bool = False,
    cheap_dropout: bool = False,
    trial: Any = None,
):
    # Called once, or once per trial of a search (the Trainer's model_init); the trial's knobs reach the Trainer's
    # arguments, not the model.
    model = recipe.build_model(spec, model_path, labels)
    regularise(model, spec.params)
    if cheap_dropout:
        cheapen_dropout(model)
    return model.to(COMPUTE_DTYPE) if pure else model  # its optimizer keeps the fp32 masters


def _trainer(
    spec: JobSpec,
    recipe: TrainingRecipe,
    prepared: Prepared,
    tokenizer: Any,
    model_init: Any,
    output_dir: Path,
    precision: str,
    callbacks: list,
) -> Trainer:
    params = spec.params
    args = training_args(
        params,
        recipe.metric_for_best_model,
        recipe.greater_is_better,
        output_dir / CHECKPOINTS,
        precision,
        n_train=len(prepared.train),
        # A recipe's own loss hands back no logits, so evaluation gathers none (chat's would fill the memory).
        prediction_loss_only=hasattr(recipe, "compute_loss"),
    )
    weights = class_weights(params, prepared.labels, _train_labels(prepared))
    # Our loss for class weights, and for a classifier that accumulates (see weighted_loss); a causal LM's own loss
    # already counts the tokens of every accumulated batch.
    heads = get_task(spec.task).architecture == "encoder"
    own_loss = weights is not None or (heads and params.gradient_accumulation_steps > 1)
    adversarial = spec.techniques.adversarial if spec.techniques else None
    base, extra = (Trainer, {}) if adversarial is None else (AdversarialTrainer, {"adversarial": adversarial})
    if hasattr(recipe, "compute_loss"):  # the recipe's own loss replaces the model's (chat's skips most logits)
        own = recipe.compute_loss

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = own(model, inputs, num_items_in_batch)
            return (loss, {}) if return_outputs else loss

        base = type(f"Recipe{base.__name__}", (base,), {"compute_loss": compute_loss})
    make = functools.partial(base, **extra)
    trainer = make(
        model=None if spec.search else model_init(),
        model_init=model_init if spec.search else None,  # a search builds a fresh model for each trial
        args=args,
        train_dataset=prepared.train,
        eval_dataset=prepared.validation,
        data_collator=recipe.collator(tokenizer, pad_to_multiple_of=8 if device_name() == "cuda" else None),
        compute_metrics=recipe.compute_metrics(prepared.labels),
        compute_loss_func=weighted_loss(weights, params.label_smoothing) if own_loss else None,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # progress leaves through on_event, not stdout
    return trainer


def by_length(rows: Any) -> Any:
    """The rows of a tokenized split, shortest first, so each evaluation batch pads little."""
    if rows is None or "input_ids" not in rows.column_names or len(rows) < 2:
        return rows
    order = sorted(range(len(rows)), key=[len(ids) for ids in rows["input_ids"]].__getitem__)
    return rows.select(order).flatten_indices()


def _train_labels(prepared: Prepared) -> list[Any]:
    columns = prepared.train.column_names
    name = "labels" if "labels" in columns else "label" if "label" in columns else None
    return list(prepared.train[name]) if name else []


def _search(
    trainer: Trainer, spec: JobSpec, log: TrialLog, model_init: Any, ctx: Context, prepared: Prepared
) -> tuple[Run, JobSpec]:
    """The trials; the trainer is left holding the best trial's model (or, with search.ensemble, the ensemble of the
    best trials), and the spec gets the best trial's knobs."""
    try:
        found = run_search(trainer, spec.search, log, params=spec.params, should_stop=ctx.should_stop)
    except SearchStopped as exc:
        raise TrainingStopped(str(exc)) from exc
    outcomes = [found, *found.runners_up]
    models = []
    for outcome in outcomes:
        model = model_init()
        model.load_state_dict(outcome.model_state)
        models.append(model.to(trainer.args.device))
    best = spec.model_copy(update={"params": spec.params.model_copy(update=found.best_params)})
    summary = {
        "metric": log.metric,
        "trials": found.trials,
        "best_trial": found.best_trial,
        "best_params": found.best_params,
        "best_run": found.best_run,
        "stopped_by_budget": found.stopped_by_budget,
    }
    trainer.model = models[0]
    if len(models) > 1:
        # Each trial's score is its best checkpoint's validation metric, and that checkpoint is the model it kept
        # (load_best_model_at_end loads it before TrialLog copies the weights): nothing to score again. Only the
        # average is new, and validation_score scores it. That evaluation batches and pads the split its own way (and
        # runs fp32 where trials ran fp16 autocast), so on a near tie its number for a trial's model could differ
        # from the trial's by a row: the average's score and the trials' are not computed quite alike.
        scores = {trial["number"]: trial["score"] for trial in found.trials}
        alone = [scores[outcome.best_trial] for outcome in outcomes]
        # The best trials answer together, except one far behind the best (it would drag the average down). No
        # greedy check on validation here: on a validation split of a hundred rows it is as noisy as the choice of
        # trial it would check, and that choice picked the worse trial on held-out data (bench/README.md).
        chosen = [i for i, score in enumerate(alone) if i == 0 or _close_behind(score, alone[0], log.greater)]
        together = EnsembleModel([models[i] for i in chosen]) if len(chosen) > 1 else None
        summary["ensemble"] = {
            "asked": spec.search.ensemble,
            "within": ENSEMBLE_WITHIN,
            "members": [
                {"trial": o.best_trial, "validation_score": score, "kept": i in chosen}
                for i, (o, score) in enumerate(zip(outcomes, alone, strict=True))
            ],
            "validation_score": validation_score(ctx, prepared, together) if together else alone[0],
        }
        if together is not None:
            trainer.model = together
    return Run(found.history, found.steps, found.train_metrics, summary), best


def _close_behind(score: float | None, best: float | None, greater: bool) -> bool:
    if score is None or best is None:
        return False
    return best - score <= ENSEMBLE_WITHIN if greater else score - best <= ENSEMBLE_WITHIN


def _parameters(model: torch.nn.Module) -> dict[str, Any]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    embeddings = model.get_input_embeddings()
    return {
        "trainable_parameters": trainable,
        "total_parameters": total,
        "trainable_share": round(trainable / max(total, 1), 6),
        "frozen_embeddings": embeddings is not None and not embeddings.weight.requires_grad,
    }


def _stopped(callbacks: list[EarlyStopping], run_index: int) -> dict[str, Any] | None:
    """Where early stopping stopped the training run that made the model (a search's kept trial)."""
    return next((callback.stops[run_index] for callback in callbacks if callback.stops), None)


def _train_info(
    run: Run, spec: JobSpec, n_train: int, recipe: TrainingRecipe, wall_seconds: float, precision: str
) -> dict:
    params = spec.params
    key = f"eval_{recipe.metric_for_best_model}"
    evals = [h for h in run.history if key in h]
    pick = max if recipe.greater_is_better else min
    best = pick(evals, key=lambda h: h[key]) if evals else None
    metrics = run.metrics
    return {
        "epochs": params.epochs,
        "steps": run.steps,
        "train_samples": n_train,
        "effective_batch_size": params.batch_size * params.gradient_accumulation_steps,
        "learning_rate": params.learning_rate,
        "method": params.method,
        "wall_seconds": round(wall_seconds, 2),
        "samples_per_second": round(metrics.get("train_samples_per_second", n_train / max(wall_seconds, 1e-9)), 2),
        "final_train_loss": round(float(metrics["train_loss"]), 4) if "train_loss" in metrics else None,
        "best_epoch": best.get("epoch") if best else None,
        "best_step": best.get("step") if best else None,
        f"best_validation_{recipe.metric_for_best_model}": round(float(best[key]), 4) if best else None,
        "precision": precision,
        "device": device_name(),
        "threads": torch.get_num_threads(),
        "history": [{k: v for k, v in h.items() if k != "total_flos"} for h in run.history],
    }
