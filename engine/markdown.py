"""Markdown pieces every task's report.md is built from: cells, tables, per-class and confusion sections, training."""

from __future__ import annotations

from typing import Any

import numpy as np

# A class whose F1 sits this far under the macro average is flagged in report.md.
LOW_F1_MARGIN = 0.10

_LENGTH_PARTS = (("p50", "median"), ("p90", "p90"), ("p95", "p95"), ("p99", "p99"), ("max", "max"))
_TRAIN_ROWS = (
    ("epochs", "Epochs"),
    ("steps", "Steps"),
    ("train_samples", "Training samples"),
    ("wall_seconds", "Wall time"),
    ("samples_per_second", "Samples per second"),
    ("precision", "Precision"),
    ("device", "Device"),
    ("threads", "CPU threads"),
    ("best_epoch", "Best epoch"),
    ("best_validation_macro_f1", "Best validation macro-F1"),
    ("final_train_loss", "Final training loss"),
)


def cell(value: Any) -> str:
    # Table cells must stay on one line and must not contain a bare pipe, or the markdown table falls apart.
    text = str(value).replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    return text.replace("|", "\\|")


def num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):.3f}"
    return str(value)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def warnings_section(report: dict) -> list[str]:
    """The report.md section that comes first when the model collapsed or lost to its baseline."""
    warnings = report.get("warnings") or []
    return ["## Warnings", "", *(f"- **{cell(warning)}**" for warning in warnings), ""] if warnings else []


def per_class_section(
    report: dict, *, title: str = "Per class", column: str = "Label", noun: str = "labels"
) -> list[str]:
    """The per-class (or per-type) table; classes well below the macro F1 are flagged."""
    macro_f1 = report["metrics"]["macro_f1"]
    baseline_f1 = (report.get("baseline") or {}).get("per_class_f1")
    header = [column, "Precision", "Recall", "F1", "Support", *(["Baseline F1"] if baseline_f1 else []), "Note"]
    rows, flagged = [], []
    for name, row in report["per_class"].items():
        # A class absent from the test split has F1 0 by convention; that says nothing about the model.
        low = row["support"] > 0 and row["f1"] < macro_f1 - LOW_F1_MARGIN
        cells = [cell(name), *(num(row[key]) for key in ("precision", "recall", "f1", "support"))]
        if baseline_f1:
            cells.append(num(baseline_f1.get(name)))
        note = "**well below average**" if low else ("no test examples" if not row["support"] else "")
        rows.append([*cells, note])
        flagged += [name] if low else []
    lines = [f"## {title}", "", *table(header, rows), ""]
    if flagged:
        lines += [
            f"F1 at least {LOW_F1_MARGIN:.2f} below the macro average ({macro_f1:.3f}): "
            f"{', '.join(cell(name) for name in flagged)}. More or cleaner examples of these {noun} usually help.",
            "",
        ]
    return lines


def confusion_section(
    report: dict, *, explanation: str = "Rows are the true label, columns the predicted label.", corner: str = "true"
) -> list[str]:
    """The confusion matrix as a markdown table."""
    matrix = report["confusion_matrix"]
    names = [cell(name) for name in matrix["labels"]]
    rows = [[f"**{names[i]}**", *(str(count) for count in counts)] for i, counts in enumerate(matrix["matrix"])]
    return ["## Confusion matrix", "", explanation, "", *table([f"{corner} \\ predicted", *names], rows), ""]


def as_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return 0
    return int(value)


def lengths_line(lengths: Any) -> list[str]:
    if not isinstance(lengths, dict):
        return []
    parts = [f"{title} {lengths[key]}" for key, title in _LENGTH_PARTS if lengths.get(key) is not None]
    return [f"Length in {lengths.get('unit', 'tokens')}: {', '.join(parts)}.", ""] if parts else []


def _epoch(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return num(value)
    return f"{round(float(value), 2):g}"  # 2.0 -> "2", 0.3333 -> "0.33"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _train_value(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if key in ("epochs", "best_epoch"):
        return _epoch(value)
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return cell(value)
    if key == "wall_seconds":
        return duration(float(value))
    if key == "samples_per_second":
        return f"{value:.1f}"
    if key == "best_validation_macro_f1":
        return num(value)  # three decimals, like every other F1 in the report
    return f"{value:.4g}" if isinstance(value, float | np.floating) else str(int(value))


def _validation_table(history: Any, best_epoch: Any) -> list[str]:
    evals = [h for h in (history if isinstance(history, list) else []) if isinstance(h, dict) and "eval_macro_f1" in h]
    if not evals:
        return []
    rows = []
    for entry in evals:
        epoch = _epoch(entry.get("epoch"))
        if best_epoch is not None and entry.get("epoch") == best_epoch:
            epoch += " (best)"
        rows.append([epoch, *(num(entry.get(key)) for key in ("eval_loss", "eval_accuracy", "eval_macro_f1"))])
    header = ["Epoch", "Validation loss", "Accuracy", "Macro-F1"]
    return ["Validation scores by epoch:", "", *table(header, rows), ""]


def train_section(train: dict | None) -> list[str]:
    lines = ["## Training", ""]
    if not train:
        return [*lines, "Evaluate-only report: no training happened in this run.", ""]
    rows = [[title, _train_value(key, train[key])] for key, title in _TRAIN_ROWS if key in train]
    # The weights trained and early stopping are said in sentences below the table.
    known = {key for key, _ in _TRAIN_ROWS} | {"history", "trainable_parameters", "total_parameters"}
    known |= {"trainable_share", "stopped_early", "search"}
    # Scalars added to the training info later still show up; nested values (the raw history) never do.
    rows += [
        [cell(key.replace("_", " ").capitalize()), _train_value(key, value)]
        for key, value in train.items()
        if key not in known and not isinstance(value, dict | list | tuple)
    ]
    if rows:
        lines += [*table(["Setting", "Value"], rows), ""]
    return [*lines, *recipe_lines(train), *_validation_table(train.get("history"), train.get("best_epoch"))]


def recipe_lines(train: dict) -> list[str]:
    """What the recipe did beyond the table: the share of weights trained, where early stopping stopped, and the
    learning-rate search's trials."""
    lines = []
    trainable, total = train.get("trainable_parameters"), train.get("total_parameters")
    if isinstance(trainable, int) and isinstance(total, int) and total:
        lines += [f"Trained {trainable:,} of {total:,} weights ({100 * trainable / total:.2f}%).", ""]
    stopped = train.get("stopped_early")
    if isinstance(stopped, dict):
        best = f"epoch {_epoch(train.get('best_epoch'))}, step {train.get('best_step')}"
        lines += [
            f"**Stopped early** at step {stopped['step']} of {stopped['of_steps']} "
            f"(epoch {_epoch(stopped['epoch'])}): {cell(stopped['reason'])}. "
            f"The model kept is the best checkpoint ({best}).",
            "",
        ]
    return lines + search_lines(train.get("search"))


def search_lines(search: Any) -> list[str]:
    """The trials of a learning-rate search, best first marked; empty without a search."""
    if not isinstance(search, dict) or not search.get("trials"):
        return []
    trials = search["trials"]
    knobs = [k for k in ("learning_rate", "batch_size", "epochs", "warmup_ratio") if any(k in t for t in trials)]
    header = [
        "Trial",
        *(k.replace("_", " ").capitalize() for k in knobs),
        f"Best validation {search['metric'].replace('_', ' ')}",
    ]
    header += ["State", "Steps", "Time"]
    rows = []
    ensemble = search.get("ensemble") or {}
    together = [m["trial"] for m in ensemble.get("members", []) if m.get("kept")]
    for trial in trials:
        name = str(trial["number"])
        if trial["number"] == search.get("best_trial"):
            name += " (best, kept)"
        elif trial["number"] in together:
            name += " (kept, in the ensemble)"
        values = [f"{trial[k]:.3g}" if isinstance(trial.get(k), float) else num(trial.get(k)) for k in knobs]
        rows.append([name, *values, num(trial.get("score")), cell(trial.get("state", "")), num(trial.get("steps"))])
        rows[-1].append(duration(float(trial["seconds"])) if trial.get("seconds") is not None else "n/a")
    pruned = sum(1 for t in trials if t.get("state") == "pruned")
    intro = f"Learning-rate search: {len(trials)} trial(s), {pruned} pruned (stopped below the median)."
    if search.get("stopped_by_budget"):
        intro += " The time budget ended the search before every trial ran."
    return [intro, _kept_sentence(search, together), "", *table(header, rows), ""]


def _kept_sentence(search: dict[str, Any], together: list[int]) -> str:
    ensemble = search.get("ensemble")
    if not ensemble:
        return "The best trial's model is the one this report scores."
    metric = f"validation {search['metric'].replace('_', ' ')}"
    alone = next((m["validation_score"] for m in ensemble["members"] if m["trial"] == search.get("best_trial")), None)
    if len(together) < 2:
        return (
            f"The next best trials were more than {num(ensemble.get('within'))} behind the best trial's {metric} "
            f"({num(alone)}), so the best trial answers alone; it is the model this report scores."
        )
    named = ", ".join(str(t) for t in together)
    return (
        f"Trials {named} answer together, with the mean of their probabilities: {metric} "
        f"{num(ensemble.get('validation_score'))} against {num(alone)} for the best trial alone. The report scores "
        f"them together; model/ holds each under members/."
    )
