"""A job with techniques: an optional domain pre-training stage, then the fine-tune itself (one run, the members
of an ensemble, or the rounds of self-training; adversarial training and augmentation live inside each run), then
the plain recipe on the same split, so that the report can say what the techniques bought."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.fit import Context, Fit, TrainingStopped, fit
from engine.hardware import autocast_precision
from engine.metrics import softmax
from engine.predict import predict_logits
from engine.progress import ProgressCallback, announce, stage_phase
from engine.spec import JobSpec
from engine.tasks import Prepared, get_task
from engine.techniques.adversarial import robustness
from engine.techniques.domain import DOMAIN_MODEL, continue_pretraining
from engine.techniques.ensemble import (
    EnsembleModel,
    folder_megabytes,
    latency_ms,
    members_of,
    save_model,
    select_members,
    validation_score,
)
from engine.techniques.self_training import added_per_label, pseudo_labels, round_summary
from engine.techniques.unlabeled import unlabeled_texts

LATENCY_TEXTS = 64
MANIFEST_FIELDS = ("member", "seed", "fold", "score", "validation_score")  # of a member's row, in ensemble.json


@dataclass
class Outcome:
    """The report of a job with techniques, and how to write its model folder."""

    report: dict[str, Any]
    save: Callable[[], Path]


@dataclass
class Tuned:
    """What the technique stage made: the model, the train_info of the run the report describes, and details."""

    model: Any
    train_info: dict[str, Any]
    details: dict[str, Any]


def train_with_techniques(ctx: Context, spec: JobSpec, prepared: Prepared, model_path: str) -> Outcome:
    """Train `spec` with its techniques and, unless turned off, the plain recipe; the report compares them."""
    techniques = spec.techniques
    recipe, tokenizer = ctx.recipe, ctx.tokenizer
    started = time.monotonic()
    info: dict[str, Any] = {"used": techniques.used(), "titles": techniques.titles()}
    if "augmentation" in prepared.summary:
        info["augment"] = prepared.summary["augmentation"]
    tuned_path = model_path
    unlabeled = unlabeled_texts(spec.data, prepared.summary)  # read once: both stages may use it
    if techniques.domain_pretraining:
        tuned_path, info["domain_pretraining"] = _domain_stage(ctx, spec, prepared, model_path, unlabeled)
    if techniques.ensemble:
        tuned = _ensemble(ctx, spec, prepared, tuned_path)
    elif techniques.self_training:
        tuned = _self_training(ctx, spec, prepared, tuned_path, unlabeled)
    else:
        fitted = fit(ctx, spec, prepared, tuned_path)
        tuned = Tuned(fitted.model, fitted.train_info, {})
    info.update(tuned.details)
    seconds = time.monotonic() - started
    announce(ctx.on_event, "evaluating")
    report = recipe.report(spec, tuned.model, tokenizer, prepared, tuned.train_info)
    if techniques.ensemble:
        info["ensemble"].update(_ensemble_totals(report, tuned, spec, ctx, prepared))
    plain = None
    if techniques.compare_with_plain:
        plain, plain_report = _plain(ctx, spec, prepared, model_path)
        report["comparison"] = compare(plain_report, report, spec, info["titles"], plain.seconds, seconds)
    if techniques.adversarial:
        info["adversarial"] = {
            **techniques.adversarial.model_dump(),
            "robustness": _robustness(ctx, spec, prepared, tuned.model, plain.model if plain else None),
        }
    report["techniques"] = info
    announce(ctx.on_event, "reporting")
    return Outcome(report, lambda: _save(ctx, tuned, report))


def _domain_stage(
    ctx: Context, spec: JobSpec, prepared: Prepared, model_path: str, unlabeled: list[str]
) -> tuple[str, dict[str, Any]]:
    stage = spec.techniques.domain_pretraining
    announce(ctx.on_event, stage_phase("domain pre-training"))
    texts = list(unlabeled)
    if stage.use_training_texts:
        texts = list(dict.fromkeys([*texts, *ctx.recipe.training_texts(prepared)]))
    progress = ProgressCallback(ctx.on_event, ctx.should_stop, samples_per_step=spec.params.batch_size)
    folder, details = continue_pretraining(
        model_path,
        ctx.tokenizer,
        texts,
        stage,
        spec.params,
        ctx.output_dir,
        precision=autocast_precision(ctx.precision),
        callbacks=[progress],
    )
    if progress.stopped:
        raise TrainingStopped("training stopped on request during domain pre-training")
    return folder, details


def _ensemble(ctx: Context, spec: JobSpec, prepared: Prepared, model_path: str) -> Tuned:
    ensemble = spec.techniques.ensemble
    metric = get_task(spec.task).headline_metric
    order = np.random.default_rng(spec.params.seed).permutation(len(prepared.train))
    folds = np.array_split(order, ensemble.members)
    members, rows = [], []
    for k in range(ensemble.members):
        announce(ctx.on_event, stage_phase(f"member {k + 1} of {ensemble.members}"))
        seed = spec.params.seed + k
        member_spec = spec.model_copy(update={"params": spec.params.model_copy(update={"seed": seed})})
        member_data = prepared
        if ensemble.split == "folds":
            keep = np.sort(np.concatenate([fold for i, fold in enumerate(folds) if i != k]))
            member_data = dataclasses.replace(prepared, train=prepared.train.select(keep.tolist()))
        fitted = fit(ctx, member_spec, member_data, model_path, run_name=f"member-{k + 1}")
        scored = ctx.recipe.report(member_spec, fitted.model, ctx.tokenizer, prepared, fitted.train_info)
        members.append(fitted.model)
        rows.append(
            {
                "member": k + 1,
                "seed": seed,
                "fold": k + 1 if ensemble.split == "folds" else None,
                "train_rows": len(member_data.train),
                "score": scored["metrics"].get(metric),
                "accuracy": scored["metrics"].get("accuracy"),
                "wall_seconds": round(fitted.seconds, 2),
                "train_info": fitted.train_info,
            }
        )
    chosen, validation = select_members(members, lambda candidate: validation_score(ctx, prepared, candidate))
    for row, score in zip(rows, validation, strict=True):
        row.update(validation_score=score, kept=row["member"] - 1 in chosen)
    train_info = {**rows[chosen[0]]["train_info"], "wall_seconds": round(sum(r["wall_seconds"] for r in rows), 2)}
    for row in rows:
        row.pop("train_info")
    details = {"ensemble": {"split": ensemble.split, "metric": metric, "members": rows, "kept": len(chosen)}}
    kept = [members[i] for i in chosen]
    # One member kept alone when averaging did not beat the best member on validation.
    return Tuned(EnsembleModel(kept) if len(kept) > 1 else kept[0], train_info, details)


def _ensemble_totals(report: dict, tuned: Tuned, spec: JobSpec, ctx: Context, prepared: Prepared) -> dict[str, Any]:
    task = get_task(spec.task)
    scores = [row["score"] for row in tuned.details["ensemble"]["members"] if row["score"] is not None]
    pick = max if task.greater_is_better else min
    totals = {
        "score": report["metrics"].get(task.headline_metric),
        "accuracy": report["metrics"].get("accuracy"),
        "best_member_score": pick(scores) if scores else None,
    }
    members = members_of(tuned.model)
    if members is None:  # one member kept alone: no averaging to time
        return totals
    texts = (ctx.recipe.test_texts(prepared) or [])[:LATENCY_TEXTS]
    length = spec.params.max_length
    return {
        **totals,
        "latency_ms": {
            "ensemble": latency_ms(lambda t: predict_logits(tuned.model, ctx.tokenizer, t, max_length=length), texts),
            "member": latency_ms(lambda t: predict_logits(members[0], ctx.tokenizer, t, max_length=length), texts),
        },
    }


def _self_training(ctx: Context, spec: JobSpec, prepared: Prepared, model_path: str, unlabeled: list[str]) -> Tuned:
    settings = spec.techniques.self_training
    recipe, tokenizer = ctx.recipe, ctx.tokenizer
    metric = recipe.metric_for_best_model
    counts = np.bincount(np.asarray(recipe.training_labels(prepared)), minlength=len(prepared.labels))
    shares = (counts / max(counts.sum(), 1)).tolist() if settings.balance else None
    rounds: list[dict[str, Any]] = []
    best: tuple[float, int, Fit] | None = None
    current, added = prepared, {}
    for index in range(settings.rounds + 1):
        caption = "labeled data only" if index == 0 else f"{index} of {settings.rounds}"
        announce(ctx.on_event, stage_phase(f"self-training round {caption}"))
        fitted = fit(ctx, spec, current, model_path, run_name=f"round-{index}")
        scored = recipe.report(spec, fitted.model, tokenizer, prepared, fitted.train_info)
        rounds.append(round_summary(index, added, len(current.train), scored, metric))
        validation = fitted.train_info.get(f"best_validation_{metric}")
        score = float("-inf") if validation is None else validation
        if best is None or score > best[0]:  # the validation split, never the test split, picks the round
            best = (score, index, fitted)
        if index == settings.rounds:
            break
        probs = softmax(predict_logits(fitted.model, tokenizer, unlabeled, max_length=spec.params.max_length))
        rows, label_ids = pseudo_labels(
            probs, threshold=settings.threshold, max_per_label=settings.max_per_label, proportions=shares
        )
        added = added_per_label(label_ids, prepared.labels)
        # Every round labels all the unlabeled texts afresh with the newest model, added to the labeled split.
        current = recipe.with_pseudo_labels(prepared, [unlabeled[i] for i in rows], label_ids, tokenizer, spec)
    _, kept, fitted = best
    details = {
        "self_training": {
            "unlabeled": len(unlabeled),
            "threshold": settings.threshold,
            "max_per_label": settings.max_per_label,
            "balance": settings.balance,
            "kept_round": kept,
            "rounds": rounds,
        }
    }
    return Tuned(fitted.model, fitted.train_info, details)


def _plain(ctx: Context, spec: JobSpec, prepared: Prepared, model_path: str) -> tuple[Fit, dict[str, Any]]:
    announce(ctx.on_event, stage_phase("plain recipe (for comparison)"))
    plain = spec.plain()
    # The same seed gives the same split; only the augmented rows (added to the training split) differ.
    plain_data = ctx.recipe.prepare(plain, ctx.tokenizer) if spec.techniques.augment else prepared
    fitted = fit(ctx, plain, plain_data, model_path, run_name="plain")
    return fitted, ctx.recipe.report(plain, fitted.model, ctx.tokenizer, plain_data, fitted.train_info)


def _robustness(ctx: Context, spec: JobSpec, prepared: Prepared, model: Any, plain: Any) -> dict[str, Any] | None:
    examples = ctx.recipe.test_examples(prepared)
    if examples is None:
        return None  # a task without one label per text (tagging, chat) has no accuracy to attack
    texts, labels = examples
    epsilon = spec.techniques.adversarial.epsilon
    ours = robustness(model, ctx.tokenizer, texts, labels, epsilon=epsilon, max_length=spec.params.max_length)
    result = {"epsilon": epsilon, **ours, "plain_clean_accuracy": None, "plain_perturbed_accuracy": None}
    if plain is not None:
        theirs = robustness(plain, ctx.tokenizer, texts, labels, epsilon=epsilon, max_length=spec.params.max_length)
        result.update(
            plain_clean_accuracy=theirs["clean_accuracy"], plain_perturbed_accuracy=theirs["perturbed_accuracy"]
        )
    return result


def compare(
    plain: dict[str, Any],
    tuned: dict[str, Any],
    spec: JobSpec,
    titles: list[str],
    plain_seconds: float,
    seconds: float,
) -> dict[str, Any]:
    """The report's first section: the plain recipe against the techniques on the same test split."""
    task = get_task(spec.task)
    metric = task.headline_metric

    def side(report: dict[str, Any], wall: float) -> dict[str, Any]:
        per_class = report.get("per_class") or {}
        return {
            "score": report["metrics"].get(metric),
            "accuracy": report["metrics"].get("accuracy"),
            "per_class_f1": {name: row.get("f1") for name, row in per_class.items() if isinstance(row, dict)},
            "wall_seconds": round(wall, 2),
        }

    ours, theirs = side(tuned, seconds), side(plain, plain_seconds)
    delta = None if ours["score"] is None or theirs["score"] is None else round(ours["score"] - theirs["score"], 4)
    accuracy = ours["accuracy"], theirs["accuracy"]
    accuracy_delta = None if None in accuracy else round(accuracy[0] - accuracy[1], 4)
    gain = None if delta is None else (delta if task.greater_is_better else -delta)
    better = None if gain is None or round(gain, 3) == 0 else gain > 0
    return {
        "metric": metric,
        "metric_name": task.headline_name,
        "techniques": titles,
        "plain": theirs,
        "technique": ours,
        "delta": delta,
        "accuracy_delta": accuracy_delta,
        "better": better,
        "verdict": verdict(titles, task.headline_name, ours["score"], theirs["score"], better),
    }


def verdict(titles: list[str], metric_name: str, ours: float | None, theirs: float | None, better: bool | None) -> str:
    """One sentence: did the techniques beat the plain recipe on the test split, and by how much."""
    named = " + ".join(titles)
    if ours is None or theirs is None:
        return f"{named}: no test score to compare with the plain recipe."
    scores = f"{metric_name} {ours:.3f} against {theirs:.3f} ({ours - theirs:+.3f})"
    if better is None:
        return f"{named} made no difference on the test split: {scores}."
    if better:
        return f"{named} beat the plain recipe on the test split: {scores}."
    return f"{named} did worse than the plain recipe on the test split: {scores}. The plain recipe is the better pick."


def _save(ctx: Context, tuned: Tuned, report: dict[str, Any]) -> Path:
    shutil.rmtree(ctx.output_dir / DOMAIN_MODEL, ignore_errors=True)  # its encoder lives on inside the model
    ensemble = report["techniques"].get("ensemble", {})
    rows = ensemble.get("members", [])
    folder = save_model(tuned.model, ctx.recipe, ctx.tokenizer, ctx.output_dir, rows, fields=MANIFEST_FIELDS)
    if members_of(tuned.model) is not None:
        ensemble.update(size_mb=folder_megabytes(folder), member_size_mb=folder_megabytes(folder / "members" / "1"))
    return folder
