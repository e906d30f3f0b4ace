"""Token-classification (NER) views: entities per type, entity-level headline scores and the kinds of error."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from engine.report_views import baseline_sentence, length_sentence, notices_markdown, warnings_markdown

ERROR_KIND_WORDS = {
    "missed": ("Missed", "a real entity the model did not find at all"),
    "spurious": ("Spurious", "the model marked something that is no entity"),
    "wrong_type": ("Wrong type", "the right words, the wrong kind of entity"),
    "wrong_boundary": ("Wrong boundary", "the entity was found, but with too many or too few words"),
}


_NER_HEADLINE = (
    ("micro_f1", "Micro F1 (entities)"),
    ("macro_f1", "Macro F1 (types)"),
    ("micro_precision", "Precision"),
    ("micro_recall", "Recall"),
    ("token_accuracy", "Token accuracy"),
)


def ner_summary_markdown(summary: dict[str, Any], dataset_name: str = "") -> str:
    """The token-classification validation summary in sentences: entities per type, splits, tag repairs."""
    name = f" **{dataset_name}**" if dataset_name else ""
    per_type = summary.get("entities_per_type") or {}
    splits = summary.get("splits") or {}
    scheme = summary.get("tag_scheme") or {}
    repairs = summary.get("repairs") or {}
    lines = [
        f"✓ **Ready to train a tagger.**{name}: {summary.get('sentences', 0)} sentences, "
        f"{summary.get('tokens', 0)} tokens, {summary.get('entities', 0)} entities of {len(per_type)} types "
        f"(tokens from `{summary.get('tokens_column')}`, tags from `{summary.get('tags_column')}`).",
        "",
        "- Entities per type: " + ", ".join(f"**{html.escape(str(k))}** ({v})" for k, v in per_type.items()),
    ]
    if splits:
        rows = {split: (info or {}).get("sentences", 0) for split, info in splits.items()}
        lines.append(
            f"- {rows.get('train', 0)} sentences to learn from, {rows.get('validation', 0)} to check progress "
            f"(validation) and {rows.get('test', 0)} kept aside for the final test."
        )
    if scheme:
        converted = scheme.get("converted_tags") or 0
        lines.append(
            f"- Tag scheme: {scheme.get('detected', '?')}"
            + (f"; {converted} tag(s) converted to IOB2." if converted else " (used as it is).")
        )
    fixed = {k: v for k, v in repairs.items() if v}
    if fixed:
        words = {"i_without_b": "entities starting with I- (read as B-)", "type_switch": "I- tags switching type"}
        lines.append("- Tag repairs: " + ", ".join(f"{n} {words.get(k, k)}" for k, n in fixed.items()) + ".")
    lines += length_sentence(summary, "Sentence")
    return "\n".join(lines + notices_markdown(summary))


def ner_headline_markdown(report: dict[str, Any], title: str) -> str:
    """Entity-level headline scores of a tagger and how it compares with the most-frequent-tag baseline."""
    metrics = report.get("metrics") or {}
    n_test = report.get("n_test")
    scope = (
        f"Scored on {n_test} held-out test sentences ({report.get('n_test_tokens', '?')} tokens). An entity counts "
        "as found only when both its words and its type are exactly right."
        if n_test
        else ""
    )
    shown = [(key, name) for key, name in _NER_HEADLINE if key in metrics]
    table = "\n".join(
        [
            "| " + " | ".join(name for _, name in shown) + " |",
            "|" + "---|" * len(shown),
            "| " + " | ".join(f"**{metrics[key]:.3f}**" for key, _ in shown) + " |",
        ]
    )
    parts = (f"### Report: {title}", warnings_markdown(report), scope, table, ner_baseline_sentence(report))
    return "\n\n".join(part for part in parts if part)


def ner_baseline_sentence(report: dict[str, Any]) -> str:
    """How the tagger compares with the baseline (most frequent tag per word), on entity micro-F1."""
    return baseline_sentence(report, "micro_f1")


def error_kinds_markdown(report: dict[str, Any]) -> str:
    """How many entity errors of each kind, largest first, with what each kind means."""
    kinds = {k: v for k, v in (report.get("error_kinds") or {}).items() if v}
    if not kinds:
        return "No entity errors on the test split."
    total = sum(kinds.values())
    lines = ["| Kind of error | Count | Share | Meaning |", "|---|---|---|---|"]
    for kind, count in sorted(kinds.items(), key=lambda item: -item[1]):
        title, meaning = ERROR_KIND_WORDS.get(kind, (kind, ""))
        lines.append(f"| {title} | {count} | {count / total:.0%} | {meaning} |")
    repaired = report.get("prediction_repairs")
    if repaired:
        lines += ["", f"{repaired} predicted I- tag(s) did not continue an entity and were read as starting one."]
    return "\n".join(lines)


def ner_errors_frame(report: dict[str, Any], limit: int | None = None) -> pd.DataFrame:
    """Example entity errors: the sentence, the entity, its true type and what the model said."""
    rows = []
    for error in (report.get("errors") or [])[:limit]:
        predicted = str(error.get("predicted", ""))
        if error.get("predicted_entity") not in (None, error.get("entity")):
            predicted = f"{predicted}: {error.get('predicted_entity')}"
        rows.append(
            {
                "Kind": ERROR_KIND_WORDS.get(error.get("kind", ""), (error.get("kind", ""), ""))[0],
                "Sentence": str(error.get("sentence", ""))[:300],
                "Entity": error.get("entity", ""),
                "True type": error.get("gold", ""),
                "Predicted": predicted,
            }
        )
    return pd.DataFrame(rows, columns=["Kind", "Entity", "True type", "Predicted", "Sentence"])  # the long one last
