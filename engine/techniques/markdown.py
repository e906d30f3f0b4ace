"""report.md's sections for techniques: "What it bought" first (plain recipe against the techniques on the same
split), then what each technique did."""

from __future__ import annotations

from typing import Any

from engine.markdown import cell, duration, num, table

EXAMPLE_CHARS = 160


def technique_sections(report: dict[str, Any]) -> list[str]:
    """The comparison and per-technique sections of a report that used techniques; nothing for one that did not."""
    info = report.get("techniques") or {}
    if not info:
        return []
    lines = _comparison(report.get("comparison"), info)
    for key, render in (
        ("augment", _augment),
        ("adversarial", _adversarial),
        ("ensemble", _ensemble),
        ("domain_pretraining", _domain),
        ("self_training", _self_training),
    ):
        if info.get(key):
            lines += render(info[key])
    return lines


def _signed(value: Any) -> str:
    return f"{value:+.3f}" if isinstance(value, int | float) else "–"


def _comparison(comparison: dict[str, Any] | None, info: dict[str, Any]) -> list[str]:
    named = " + ".join(info.get("titles") or [])
    if not comparison:
        return ["## What it bought", "", f"{named} were used; the plain recipe was not trained to compare.", ""]
    plain, ours = comparison["plain"], comparison["technique"]
    rows = [
        [f"Test {comparison['metric_name']}", num(plain["score"]), num(ours["score"]), _signed(comparison["delta"])],
        ["Accuracy", num(plain["accuracy"]), num(ours["accuracy"]), _signed(comparison.get("accuracy_delta"))],
    ]
    for label, f1 in (plain.get("per_class_f1") or {}).items():
        theirs = (ours.get("per_class_f1") or {}).get(label)
        gap = theirs - f1 if isinstance(theirs, int | float) and isinstance(f1, int | float) else None
        rows.append([f"F1 {cell(label)}", num(f1), num(theirs), _signed(gap)])
    rows.append(["Training time", duration(plain["wall_seconds"]), duration(ours["wall_seconds"]), ""])
    header = ["", "Plain recipe", f"With {named}", "Difference"]
    return ["## What it bought", "", comparison["verdict"], "", *table(header, rows), ""]


def _short(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"


def _augment(info: dict[str, Any]) -> list[str]:
    per_label = ", ".join(f"{cell(k)} {v}" for k, v in (info.get("added_per_label") or {}).items())
    lines = [
        "## Data augmentation",
        "",
        f"{info['added']} augmented copies were added to the {info['original']} training rows "
        f"({', '.join(info['methods'])}; up to {info['copies']} per row, {info['rate']:g} of the "
        f"{info['unit']}s edited; per label: {per_label}). Validation and test rows were never augmented.",
        "",
    ]
    rows = [
        [e["method"], cell(e["label"]), cell(_short(e["before"])), cell(_short(e["after"]))] for e in info["examples"]
    ]
    return [*lines, *table(["Edit", "Label", "Before", "After"], rows), ""] if rows else lines


def _adversarial(info: dict[str, Any]) -> list[str]:
    steps = f", {info['steps']} steps" if info.get("method") == "pgd" else ""
    lines = ["## Adversarial training", "", f"{info['method'].upper()} with epsilon {info['epsilon']:g}{steps}.", ""]
    check = info.get("robustness")
    if not check:
        return lines
    rows = [
        ["Plain recipe", num(check.get("plain_clean_accuracy")), num(check.get("plain_perturbed_accuracy"))],
        ["Adversarial training", num(check.get("clean_accuracy")), num(check.get("perturbed_accuracy"))],
    ]
    return [
        *lines,
        f"Robustness check: test accuracy as given and with each text's word embeddings pushed by an FGM step of "
        f"size {check['epsilon']:g} against its true label.",
        "",
        *table(["Model", "Test accuracy", "Under the perturbation"], rows),
        "",
    ]


def _ensemble(info: dict[str, Any]) -> list[str]:
    metric = info["metric"].replace("_", " ")
    rows = [
        [
            str(m["member"]),
            str(m["seed"]),
            "" if m.get("fold") is None else str(m["fold"]),
            str(m["train_rows"]),
            num(m.get("validation_score")),
            num(m["score"]),
            "yes" if m.get("kept", True) else "no",
        ]
        for m in info["members"]
    ]
    rows.append(["Ensemble", "", "", "", "", num(info.get("score")), ""])
    kept = info.get("kept", len(info["members"]))
    if kept == 1:
        how = (
            "Averaging did not beat the best member on the validation split, so the job keeps that member alone "
            "(served as one model)."
        )
    else:
        how = f"The {kept} members kept (each only if averaging it in did not lower the validation score) answer "
        how += "with their mean probabilities."
    latency = info.get("latency_ms") or {}
    cost = (
        f"Size {_plain_number(info.get('size_mb'))} MB against {_plain_number(info.get('member_size_mb'))} MB for "
        f"one member; {_plain_number(latency.get('ensemble'))} ms per text against "
        f"{_plain_number(latency.get('member'))} ms for one member."
    )
    header = ["Member", "Seed", "Left-out fold", "Training rows", f"Validation {metric}", f"Test {metric}", "Kept"]
    return [
        "## Ensemble",
        "",
        f"{len(info['members'])} members trained ({info['split']}). {how} Best member on the test split "
        f"{num(info.get('best_member_score'))}, the model kept {num(info.get('score'))} ({metric}).",
        "",
        *table(header, rows),
        "",
        *([cost, ""] if kept > 1 else []),
    ]


def _plain_number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else "–"


def _domain(info: dict[str, Any]) -> list[str]:
    loss = f"{num(info['mlm_loss_before'])} before, {num(info['mlm_loss_after'])} after"
    if info.get("mlm_loss_head_only") is not None:
        loss = (
            f"{num(info['mlm_loss_before'])} with the fresh head, {num(info['mlm_loss_head_only'])} once the head "
            f"alone was fitted (the checkpoint had none), {num(info['mlm_loss_after'])} after the encoder adapted"
        )
    return [
        "## Domain pre-training",
        "",
        f"Masked-LM training on {info['texts']} domain texts for {num(info['epochs'])} epoch(s) ({info['steps']} "
        f"steps, {duration(info['wall_seconds'])}). Masked-LM loss on {info['held_out']} held-out texts, same masks: "
        f"{loss}.",
        "",
    ]


def _self_training(info: dict[str, Any]) -> list[str]:
    rows = []
    for entry in info["rounds"]:
        added = ", ".join(f"{cell(k)} {v}" for k, v in entry["added"].items()) or "none (labeled data only)"
        rows.append(
            [
                str(entry["round"]),
                added,
                str(entry["train_rows"]),
                num(entry["validation_score"]),
                num(entry["test_score"]),
            ]
        )
    return [
        "## Self-training",
        "",
        f"{info['unlabeled']} unlabeled texts; predictions at least {info['threshold']:g} probable became "
        f"pseudo-labels. The model kept is round {info['kept_round']}'s, the best on the validation split.",
        "",
        *table(["Round", "Pseudo-labels added", "Training rows", "Validation score", "Test score"], rows),
        "",
    ]
