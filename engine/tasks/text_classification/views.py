"""Text-classification views: the data summary in sentences, headline scores and the most confident mistakes."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from engine.report_views import LENGTH_NOTICES, baseline_sentence, warnings_markdown


def summary_markdown(summary: dict[str, Any], dataset_name: str = "") -> str:
    """The validation summary in sentences: counts, splits, lengths and every notice."""
    labels = summary.get("rows_per_label") or {}
    splits = summary.get("splits") or {}
    lengths = summary.get("length_tokens") or {}
    name = f" **{dataset_name}**" if dataset_name else ""
    lines = [
        f"✓ **Ready to train.**{name}: {summary.get('rows', 0)} usable rows, {len(labels)} labels, "
        f"text from column `{summary.get('text_column')}`, labels from column `{summary.get('label_column')}`.",
        "",
        "- Labels: " + ", ".join(f"**{html.escape(str(k))}** ({v})" for k, v in labels.items()),
    ]
    if splits:
        rows = {split: (info or {}).get("rows", 0) for split, info in splits.items()}
        lines.append(
            f"- {rows.get('train', 0)} rows to learn from, {rows.get('validation', 0)} to check progress while "
            f"training (validation) and {rows.get('test', 0)} kept aside for the final test."
        )
    if lengths:
        unit = lengths.get("unit", "tokens")
        lines.append(
            f"- Text length in {unit}: typically {lengths.get('p50')}, 95% are at most {lengths.get('p95')}, "
            f"the longest has {lengths.get('max')}."
        )
    notices = [n for n in summary.get("notices") or [] if not any(said in n for said in LENGTH_NOTICES)]
    if notices:
        lines += ["", "**Worth a look:**", ""] + [f"- ⚠ {notice}" for notice in notices]
    return "\n".join(lines)


_HEADLINE = (
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro F1"),
    ("weighted_f1", "Weighted F1"),
    ("macro_precision", "Macro precision"),
    ("macro_recall", "Macro recall"),
)


def headline_markdown(report: dict[str, Any], title: str) -> str:
    """Headline metrics and the comparison with the baseline, in words."""
    metrics = report.get("metrics") or {}
    title = f"### Report: {title}"
    n_test = report.get("n_test")
    scope = f"Scored on {n_test} held-out test rows the model never saw in training." if n_test else ""
    shown = [(key, name) for key, name in _HEADLINE if key in metrics]
    table = "\n".join(
        [
            "| " + " | ".join(name for _, name in shown) + " |",
            "|" + "---|" * len(shown),
            "| " + " | ".join(f"**{metrics[key]:.3f}**" for key, _ in shown) + " |",
        ]
    )
    parts = (title, warnings_markdown(report), scope, table, baseline_sentence(report))
    return "\n\n".join(part for part in parts if part)


def errors_frame(report: dict[str, Any], limit: int | None = None) -> pd.DataFrame:
    """The wrong predictions the model was surest of."""
    rows = [
        {
            "Text": error["text"][:300],
            "True label": error["label"],
            "Predicted": error["predicted"],
            "Confidence": f"{error['confidence']:.3f}",
        }
        for error in (report.get("errors") or [])[:limit]
    ]
    # Labels and confidence first: a long text in front pushed them off-screen, even at 1920 px.
    return pd.DataFrame(rows, columns=["True label", "Predicted", "Confidence", "Text"])
