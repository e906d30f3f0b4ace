"""A report's techniques as a person reads them: what they bought over the plain recipe (the verdict and a side-by-side
table), then one short section per technique (augmentation counts and examples, robustness under perturbation,
the ensemble's members, the masked-LM loss of domain pre-training, the rounds of self-training).

Pure functions of the report dict (any value may be null), so they are tested without a browser.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pandas as pd

from engine.techniques import TECHNIQUES
from ui.techniques import signed

BOUGHT_TITLE = "What it bought"
PLAIN = "Plain recipe"
SPLIT_WORDS = {"seeds": "each with its own seed", "folds": "each leaving out one fold of the training split"}
UNIT_WORDS = {"word": "words", "character": "characters", "mixed": "words (characters in Chinese and Japanese)"}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def score(value: Any) -> str:
    """A score with 3 decimals, or 'n/a'."""
    return f"{float(value):.3f}" if _number(value) else "n/a"


def clock(seconds: Any) -> str:
    """A duration to the second: '45 s', '1 min 12 s', '2 min', '1 h 05 min'; empty when unknown."""
    if not _number(seconds) or seconds < 0:
        return ""
    minutes, rest = divmod(round(seconds), 60)
    if not minutes:
        return f"{rest} s"
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def signed_clock(seconds: Any) -> str:
    """A difference of durations with its sign: '+50 s', '-1 min 5 s'."""
    return ("+" if seconds >= 0 else "-") + clock(abs(seconds)) if _number(seconds) else ""


def techniques_title(comparison: dict[str, Any], techniques: dict[str, Any] | None = None) -> str:
    """'Data augmentation + Adversarial training': the techniques the comparison is of."""
    titles = comparison.get("techniques") or (techniques or {}).get("titles") or ["the techniques"]
    return " + ".join(str(title) for title in titles)


def metric_name(comparison: dict[str, Any] | None) -> str:
    """How the comparison's metric reads ('macro F1'), or 'score'."""
    comparison = comparison or {}
    return str(comparison.get("metric_name") or comparison.get("metric") or "score").replace("_", " ")


def _difference(plain: Any, technique: Any, given: Any) -> str:
    if _number(given):
        return signed(given)
    return signed(technique - plain) if _number(plain) and _number(technique) else ""


def bought_frame(comparison: dict[str, Any], techniques: dict[str, Any] | None = None) -> pd.DataFrame:
    """Plain recipe, the techniques and the difference side by side: the test score, accuracy, F1 per label and
    the training time."""
    plain, technique = comparison.get("plain") or {}, comparison.get("technique") or {}
    rows = [[f"Test {metric_name(comparison)}", plain.get("score"), technique.get("score"), comparison.get("delta")]]
    if _number(plain.get("accuracy")) or _number(technique.get("accuracy")):
        rows.append(["Accuracy", plain.get("accuracy"), technique.get("accuracy"), comparison.get("accuracy_delta")])
    plain_f1, technique_f1 = plain.get("per_class_f1") or {}, technique.get("per_class_f1") or {}
    for label in dict.fromkeys([*plain_f1, *technique_f1]):
        rows.append([f"F1 · {label}", plain_f1.get(label), technique_f1.get(label), None])
    cells = [[name, score(p), score(t), _difference(p, t, d)] for name, p, t, d in rows]
    seconds = plain.get("wall_seconds"), technique.get("wall_seconds")
    spent = seconds[1] - seconds[0] if all(_number(s) for s in seconds) else None
    cells.append(["Training time", clock(seconds[0]), clock(seconds[1]), signed_clock(spent)])
    columns = ["", PLAIN, f"With {techniques_title(comparison, techniques)}", "Difference"]
    return pd.DataFrame(cells, columns=columns)


def bought_markdown(comparison: dict[str, Any], techniques: dict[str, Any] | None = None) -> str:
    """The section's heading and its verdict sentence (made from the numbers when the report has none)."""
    verdict = comparison.get("verdict")
    if not verdict:
        plain, technique = comparison.get("plain") or {}, comparison.get("technique") or {}
        verdict = (
            f"{techniques_title(comparison, techniques)} against the plain recipe on the test split: "
            f"{metric_name(comparison)} {score(technique.get('score'))} against {score(plain.get('score'))}"
        )
        difference = _difference(plain.get("score"), technique.get("score"), comparison.get("delta"))
        verdict += f" ({difference})." if difference else "."
    return f"### {BOUGHT_TITLE}\n\n{verdict}"


# ---- one section per technique: HTML, so that long texts wrap inside their cells ------------------------------------


def _text(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(header: list[str], rows: list[list[Any]], text_columns: tuple[int, ...] = ()) -> str:
    head = "".join(f"<th>{_text(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"pg-text" if i in text_columns else "pg-cell"}">{_text(value)}</td>'
            for i, value in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _count(value: Any) -> str:
    return f"{value:,}" if _number(value) else "n/a"


def _per_label(counts: Any) -> str:
    if not isinstance(counts, dict) or not counts:
        return ""
    return " · ".join(f"{label} {_count(n)}" for label, n in counts.items())


def augment_section(augment: dict[str, Any], metric: str) -> str:
    """How many edited copies were added, per label, and examples of the edits before and after."""
    methods = ", ".join(str(m) for m in augment.get("methods") or []) or "n/a"
    rate = augment.get("rate")
    unit = UNIT_WORDS.get(str(augment.get("unit")), "words")
    edits = f"each edit changes {rate:.0%} of a text's {unit}" if _number(rate) else f"edits of {unit}"
    lines = [
        f"{_count(augment.get('original'))} training examples, {_count(augment.get('added'))} edited copies added "
        f"({_count(augment.get('copies'))} per example; edits: {methods}; {edits}).",
    ]
    if _per_label(augment.get("added_per_label")):
        lines.append(f"Added per label: {_per_label(augment.get('added_per_label'))}.")
    paragraphs = "".join(f"<p>{_text(line)}</p>" for line in lines)
    examples = [e for e in augment.get("examples") or [] if isinstance(e, dict)]
    if not examples:
        return paragraphs
    rows = [[e.get("method"), e.get("label"), e.get("before"), e.get("after")] for e in examples]
    return paragraphs + _table(["Edit", "Label", "Before", "After"], rows, text_columns=(1, 2, 3))


def adversarial_section(adversarial: dict[str, Any], metric: str) -> str:
    """The perturbation trained against, and the accuracy of both models under it."""
    method = str(adversarial.get("method") or "n/a")
    steps = f", {_count(adversarial.get('steps'))} steps" if method == "pgd" else ""
    epsilon = adversarial.get("epsilon")
    shown = f"{epsilon:g}" if _number(epsilon) else "n/a"
    intro = f"<p>{_text(f'{method.upper()} perturbations of the embeddings, epsilon {shown}{steps}.')}</p>"
    robustness = adversarial.get("robustness")
    if not isinstance(robustness, dict):
        return intro + "<p>No robustness check in this report.</p>"
    size = robustness.get("epsilon")
    under = f"Accuracy under perturbation (epsilon {size:g})" if _number(size) else "Accuracy under perturbation"
    rows = []
    for name, clean, perturbed in (
        (PLAIN, robustness.get("plain_clean_accuracy"), robustness.get("plain_perturbed_accuracy")),
        ("Adversarial training", robustness.get("clean_accuracy"), robustness.get("perturbed_accuracy")),
    ):
        if _number(clean) or _number(perturbed):
            rows.append([name, score(clean), score(perturbed), _difference(clean, perturbed, None)])
    return intro + _table(["Model", "Clean accuracy", under, "Lost to the perturbation"], rows)


def ensemble_section(ensemble: dict[str, Any], metric: str) -> str:
    """Each member's score beside the ensemble's, and what the ensemble costs in size and latency."""
    members = [m for m in ensemble.get("members") or [] if isinstance(m, dict)]
    how = SPLIT_WORDS.get(str(ensemble.get("split")), str(ensemble.get("split") or ""))
    kept = [m for m in members if m.get("kept", True)]
    if len(kept) == 1 and len(members) > 1:
        said = (
            f"{len(members)} members, {how}; averaging did not beat the best one on the validation split, so the "
            f"job keeps member {kept[0].get('member')} alone."
        )
    else:
        said = (
            f"{len(members)} members, {how}; the {len(kept)} kept (each only if averaging it in did not lower the "
            "validation score) answer with their averaged probabilities."
        )
    intro = f"<p>{_text(said)}</p>"
    # The comparison's name of the metric ('macro F1') when there is one, else the report's key made readable.
    name = metric if metric != "score" else str(ensemble.get("metric") or metric).replace("_", " ")
    rows = []
    for member in members:
        seed, fold = member.get("seed"), member.get("fold")
        which = " · ".join([*([f"seed {seed}"] if seed is not None else []), *([f"fold {fold}"] if fold else [])])
        rows.append(
            [
                member.get("member"),
                which or "n/a",
                _count(member.get("train_rows")),
                score(member.get("validation_score")),
                score(member.get("score")),
                score(member.get("accuracy")),
                clock(member.get("wall_seconds")),
                "yes" if member.get("kept", True) else "no",
            ]
        )
    model = "members kept" if len(kept) > 1 else "the member kept"
    rows.append(["Ensemble", model, "", "", score(ensemble.get("score")), score(ensemble.get("accuracy")), "", ""])
    header = ["Member", "Seed / fold", "Training rows", f"Validation {name}", f"Test {name}", "Accuracy", "Time"]
    table = _table([*header, "Kept"], rows)
    facts = []
    if _number(ensemble.get("best_member_score")):
        best = ensemble["best_member_score"]
        facts.append(f"best single member {score(best)} ({_difference(best, ensemble.get('score'), None)})")
    if _number(ensemble.get("size_mb")):
        one = ensemble.get("member_size_mb")
        facts.append(f"size {ensemble['size_mb']:.1f} MB" + (f" ({one:.1f} MB per member)" if _number(one) else ""))
    latency = ensemble.get("latency_ms") or {}
    if _number(latency.get("ensemble")):
        one = latency.get("member")
        against = f" against {one:.1f} ms for one member" if _number(one) else ""
        facts.append(f"latency {latency['ensemble']:.1f} ms per text{against}")
    said = "; ".join(facts)
    return intro + table + (f"<p>{_text(said[:1].upper() + said[1:])}.</p>" if facts else "")


def domain_section(domain: dict[str, Any], metric: str) -> str:
    """The masked-LM loss on held-out domain texts before and after the stage, and what the stage read."""
    before, after = domain.get("mlm_loss_before"), domain.get("mlm_loss_after")
    change = f" ({signed(after - before)})" if _number(before) and _number(after) else ""
    loss = f"Masked-LM loss on {_count(domain.get('held_out'))} held-out texts: {score(before)} → {score(after)}"
    head_only = domain.get("mlm_loss_head_only")
    if _number(head_only):  # the checkpoint had no masked-LM head: it was fitted alone first
        change += f"; {score(head_only)} once the fresh masked-LM head alone was fitted"
    epochs = domain.get("epochs")
    read = (
        f"Read {_count(domain.get('texts'))} texts, {epochs:g} epochs" if _number(epochs) else "Read the texts"
    ) + f", {_count(domain.get('steps'))} steps"
    spent = clock(domain.get("wall_seconds"))
    read += f", {spent}." if spent else "."
    head = (
        " The base model had no masked-LM head: a fresh one was fitted for an epoch with the encoder frozen, then "
        "the encoder trained with it."
        if domain.get("fresh_head")
        else ""
    )
    return f"<p>{_text(loss + change + '.')}</p><p>{_text(read + head)}</p>"


def self_training_section(self_training: dict[str, Any], metric: str) -> str:
    """Each round: the pseudo-labels it added per label, the training rows and the scores it reached."""
    threshold = self_training.get("threshold")
    bar = f"at least {threshold:.2f} probable" if _number(threshold) else "confident"
    intro = f"{_count(self_training.get('unlabeled'))} unlabeled texts; predictions {bar} became pseudo-labels."
    if self_training.get("kept_round") is not None:
        intro += " The round with the best validation score is the model kept."
    rows = []
    for entry in [r for r in self_training.get("rounds") or [] if isinstance(r, dict)]:
        added = _per_label(entry.get("added"))
        total = entry.get("added_total")
        if entry.get("round") == 0:
            added = "none (labeled data only)"
        elif added:
            added += f" ({_count(total)} in all)" if _number(total) else ""
        else:
            added = _count(total) if _number(total) else "none"
        kept = self_training.get("kept_round") is not None and entry.get("round") == self_training["kept_round"]
        row = [f"{entry.get('round')} (kept)" if kept else entry.get("round"), added, _count(entry.get("train_rows"))]
        rows.append([*row, score(entry.get("validation_score")), score(entry.get("test_score"))])
    header = ["Round", "Pseudo-labels added", "Training rows", f"Validation {metric}", f"Test {metric}"]
    return f"<p>{_text(intro)}</p>" + _table(header, rows, text_columns=(1,))


SECTIONS: dict[str, Callable[[dict[str, Any], str], str]] = {
    "augment": augment_section,
    "adversarial": adversarial_section,
    "ensemble": ensemble_section,
    "domain_pretraining": domain_section,
    "self_training": self_training_section,
}


def technique_sections(techniques: dict[str, Any] | None, comparison: dict[str, Any] | None = None) -> str:
    """One short section per technique the report holds, in TECHNIQUES order; empty without techniques."""
    if not isinstance(techniques, dict):
        return ""
    names = [n for n in TECHNIQUES if n in techniques or n in (techniques.get("used") or [])]
    metric = metric_name(comparison)
    parts = []
    for name in names:
        details = techniques.get(name)
        body = SECTIONS[name](details, metric) if isinstance(details, dict) else "<p>No details in this report.</p>"
        parts.append(f'<section class="pg-technique"><h4>{_text(TECHNIQUES[name])}</h4>{body}</section>')
    return f'<div class="pg-techniques">{"".join(parts)}</div>' if parts else ""
