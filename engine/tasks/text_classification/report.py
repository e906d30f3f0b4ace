"""The text-classification report: a TF-IDF baseline, the most confident errors, and its report.md."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline

from engine.collapse import below_baseline_warning, likely_cause, one_answer_warning, present
from engine.markdown import (
    as_count,
    cell,
    confusion_section,
    lengths_line,
    num,
    per_class_section,
    table,
    train_section,
    warnings_section,
)
from engine.masking import masked_sentence
from engine.metrics import CLASSIFICATION_MODULE, classification_metrics
from engine.techniques.markdown import technique_sections

BASELINE_NAME = "TF-IDF + logistic regression"
ERROR_TEXT_CHARS = 200

_HEADLINE_ROWS = (
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro F1"),
    ("micro_f1", "Micro F1"),
    ("weighted_f1", "Weighted F1"),
    ("macro_precision", "Macro precision"),
    ("macro_recall", "Macro recall"),
)
_SPLIT_NAMES = ("train", "validation", "test")
_COLUMN_KEYS = (("text", "text_column"), ("labels", "label_column"))
_DROPPED_PHRASES = {"blank_text": "{n} with blank text", "missing_label": "{n} with no label"}
_DUPLICATE_PHRASES = {
    "exact": "{n} exact repeat(s) of an earlier row",
    "conflicting_labels": "{n} text(s) with conflicting labels",
    "across_splits": "{n} validation/test text(s) also in the training split",
}


def tfidf_baseline(
    train_texts: list[str],
    train_labels: list[int],
    test_texts: list[str],
    test_labels: list[int],
    labels: list[str],
    *,
    seed: int = 42,
) -> dict[str, Any]:
    """Train and score a TF-IDF + logistic regression baseline that the fine-tuned model has to beat."""
    if len(train_texts) != len(train_labels) or len(test_texts) != len(test_labels):
        raise ValueError(
            f"texts and labels must pair up: train has {len(train_texts)} texts and {len(train_labels)} labels, "
            f"test has {len(test_texts)} texts and {len(test_labels)} labels"
        )
    if len(set(train_labels)) < 2:
        raise ValueError(
            f"the baseline needs at least two classes in the training split; got {sorted(set(train_labels))}"
        )
    if not test_texts:
        raise ValueError("the baseline needs at least one test text; the test split is empty")

    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
            # Character n-grams inside word boundaries carry the signal for languages written without spaces
            # (Chinese, Japanese) and for misspellings, where word n-grams see one giant token.
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1)),
        ]
    )
    # Balanced class weights: the report's headline is macro-F1, and on skewed uploads an unweighted model
    # mostly predicts the majority class; weighting gives the fine-tuned model an honest, not a weak, rival.
    classifier = LogisticRegression(max_iter=1000, class_weight="balanced", random_state=seed)
    model = make_pipeline(features, classifier)
    try:
        model.fit(train_texts, train_labels)
    except ValueError as exc:
        raise ValueError(f"the TF-IDF baseline could not be trained ({exc}); are the training texts empty?") from exc
    predictions = model.predict(test_texts)

    scores = classification_metrics(test_labels, predictions.tolist(), labels)
    return {
        "name": BASELINE_NAME,
        "accuracy": scores["metrics"]["accuracy"],
        "macro_f1": scores["metrics"]["macro_f1"],
        "per_class_f1": {name: row["f1"] for name, row in scores["per_class"].items()},
    }


def _check_probs(probs: np.ndarray, n_rows: int, labels: list[str]) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape != (n_rows, len(labels)):
        raise ValueError(f"probs must have shape ({n_rows}, {len(labels)}) = (texts, labels); got {probs.shape}")
    return probs


def confident_errors(
    texts: list[str], y_true: Sequence[int], probs: np.ndarray, labels: list[str], limit: int = 20
) -> list[dict[str, Any]]:
    """The wrong predictions the model was surest of, most confident first, at most `limit` of them."""
    if len(texts) != len(y_true):
        raise ValueError(f"texts has {len(texts)} items but y_true has {len(y_true)}; they must pair one to one")
    probs = _check_probs(probs, len(texts), labels)
    true = np.asarray(y_true, dtype=np.int64)
    if true.size and (true.min() < 0 or true.max() >= len(labels)):
        raise ValueError(f"y_true holds class ids outside 0..{len(labels) - 1} for labels {labels}")
    predicted = probs.argmax(axis=1)
    confidence = probs[np.arange(len(texts)), predicted]
    wrong = np.flatnonzero(predicted != true)
    # A stable sort keeps ties in input order, so the same predictions always give the same list.
    ordered = wrong[np.argsort(-confidence[wrong], kind="stable")][: max(limit, 0)]
    return [
        {
            "text": texts[i],
            "label": labels[true[i]],
            "predicted": labels[predicted[i]],
            "confidence": round(float(confidence[i]), 4),
        }
        for i in ordered
    ]


def build_classification_report(
    *,
    task: str,
    base_model: str,
    labels: list[str],
    test_texts: list[str],
    y_true: Sequence[int],
    probs: np.ndarray,
    baseline: dict | None,
    data_summary: dict,
    train_info: dict | None,
) -> dict[str, Any]:
    """Assemble the full report of a classification model scored on the test split."""
    if len(test_texts) != len(y_true):
        raise ValueError(f"test_texts has {len(test_texts)} items but y_true has {len(y_true)}")
    probs = _check_probs(probs, len(test_texts), labels)
    y_pred = probs.argmax(axis=1).tolist()
    scores = classification_metrics(y_true, y_pred, labels)
    return {
        "task": task,
        "base_model": base_model,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "split": "test",
        "n_test": len(test_texts),
        "labels": list(labels),
        "metrics": scores["metrics"],
        "per_class": scores["per_class"],
        "confusion_matrix": scores["confusion_matrix"],
        "metrics_module": CLASSIFICATION_MODULE,  # evaluate.load(metric_module_path(it)) scores alike
        "baseline": baseline,
        "errors": confident_errors(test_texts, y_true, probs, labels),
        "warnings": collapse_warnings(y_true, y_pred, labels, scores["metrics"], baseline, data_summary),
        "data": data_summary,
        "train": train_info,
    }


def collapse_warnings(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    labels: list[str],
    metrics: dict,
    baseline: dict | None,
    data_summary: dict | None,
) -> list[str]:
    """What must be said at the top of a report: a model that predicts one class for everything, or loses to the
    baseline, with the likely cause and what to try."""
    cause = likely_cause(data_summary)
    named = ([labels[i] for i in y_true], [labels[i] for i in y_pred])
    return present(
        one_answer_warning(named[1], named[0], cause, unit="rows") if len(labels) > 1 else None,
        below_baseline_warning(metrics.get("macro_f1"), baseline, "macro_f1", "macro-F1", cause),
    )


def _comparison_line(report: dict) -> str:
    baseline = report.get("baseline")
    if not baseline or baseline.get("macro_f1") is None:
        return "No baseline was computed for this report."
    ours, theirs = report["metrics"]["macro_f1"], baseline["macro_f1"]
    name = baseline.get("name", BASELINE_NAME)
    diff = ours - theirs
    scores = f"({ours:.3f} vs {theirs:.3f})"
    if round(diff, 3) > 0:
        return f"**{diff:+.3f} macro-F1** over {name} {scores}."
    if round(diff, 3) == 0:
        return f"**Same macro-F1** as {name} {scores}: fine-tuning bought nothing over the cheap baseline."
    return (
        f"**Warning: the fine-tuned model is worse than {name}** by {-diff:.3f} macro-F1 {scores}. "
        "Try more epochs, a different learning rate or base model, or more training data."
    )


def _counts_sentence(title: str, counts: Any, phrases: dict[str, str]) -> str:
    """`Title: 2 with blank text, 1 with no label.` from the non-zero counts, or `Title: none.`"""
    if not isinstance(counts, dict):  # a bare total from an older summary
        return f"{title}: {as_count(counts) or 'none'}."
    parts = [
        phrase.format(n=as_count(counts.get(key))) for key, phrase in phrases.items() if as_count(counts.get(key))
    ]
    return f"{title}: {', '.join(parts) if parts else 'none'}."


def _truncated_sentence(truncated: Any, rows: Any) -> str:
    if not isinstance(truncated, dict):
        return f"Truncated: {as_count(truncated) or 'none'}."
    limit = f"{truncated.get('max_length', '?')} {truncated.get('unit', 'tokens')}"
    count = as_count(truncated.get("count"))
    if not count:
        return f"Truncated: none (every text fits in max_length {limit})."
    which = f"{count} of {rows} text(s) ({count / rows:.0%})" if as_count(rows) else f"{count} text(s)"
    return f"Truncated: {which} are longer than max_length {limit} and lose their end."


def _files_table(files: Any) -> list[str]:
    # The file name, not the full path: upload folders are long and say nothing to the reader (report.json has it).
    rows = [
        [cell(f.get("split", "")), cell(Path(str(f.get("path", ""))).name)]
        + [cell(f.get(key, "")) for key in ("format", "encoding")]
        + [num(f.get(key)) for key in ("rows_read", "rows_kept")]
        for f in (files if isinstance(files, list) else [])
        if isinstance(f, dict)
    ]
    header = ["Split", "File", "Format", "Encoding", "Rows read", "Rows kept"]
    return [*table(header, rows), ""] if rows else []


def _labels_table(data: dict) -> list[str]:
    totals = data.get("rows_per_label") or {}
    splits = data.get("splits") or {}
    per_split = {s: (splits.get(s) or {}).get("rows_per_label") or {} for s in _SPLIT_NAMES}
    names = list(dict.fromkeys([*(data.get("labels") or []), *totals, *(n for c in per_split.values() for n in c)]))
    if not names:
        return []
    total = num(data.get("rows", sum(totals.values())))
    if not splits:  # an evaluate-only summary covers one file, not three splits
        rows = [[cell(name), num(totals.get(name, 0))] for name in names]
        return [*table(["Label", "Rows"], [*rows, ["**Total**", total]]), ""]
    rows = [
        [cell(name), *(num(per_split[s].get(name, 0)) for s in _SPLIT_NAMES)]
        + [num(totals.get(name, sum(per_split[s].get(name, 0) for s in _SPLIT_NAMES)))]
        for name in names
    ]
    split_totals = [num((splits.get(s) or {}).get("rows", sum(per_split[s].values()))) for s in _SPLIT_NAMES]
    lines = [
        *table(
            ["Label", *(split.capitalize() for split in _SPLIT_NAMES), "Total"],
            [*rows, ["**Total**", *split_totals, total]],
        ),
        "",
    ]
    # Say where held-out splits came from; the files table already lists the splits read from their own files.
    derived: dict[str, list[str]] = {}
    for split in _SPLIT_NAMES:
        source = (splits.get(split) or {}).get("source")
        if source and source != "file":
            derived.setdefault(str(source), []).append(split)
    seed = f" (seed {data['seed']})" if data.get("seed") is not None else ""
    for source, split_names in derived.items():
        lines += [f"{' and '.join(split_names).capitalize()}: {cell(source)}{seed}.", ""]
    return lines


def _data_section(data: dict | None) -> list[str]:
    lines = ["## Data", ""]
    if not data:
        return [*lines, "No data summary was recorded.", ""]
    lines += _files_table(data.get("files"))
    columns = [f"{kind} from '{data[key]}'" for kind, key in _COLUMN_KEYS if data.get(key)]
    if columns:
        lines += [cell(f"Columns: {', '.join(columns)}."), ""]
    lines += _labels_table(data)
    lines += lengths_line(data.get("length_tokens"))
    sentences = [
        _counts_sentence("Dropped rows", data.get("dropped"), _DROPPED_PHRASES) if "dropped" in data else None,
        _counts_sentence("Duplicates", data.get("duplicates"), _DUPLICATE_PHRASES) if "duplicates" in data else None,
        _truncated_sentence(data["truncated"], data.get("rows")) if "truncated" in data else None,
        masked_sentence(data),
    ]
    lines += [f"- {cell(sentence)}" for sentence in sentences if sentence]
    notices = data.get("notices") or []
    if isinstance(notices, str):
        notices = [notices]
    if notices:
        lines += ["", "Notices:", "", *(f"- {cell(notice)}" for notice in notices)]
    return [*lines, ""]


def _errors_section(errors: list[dict]) -> list[str]:
    lines = ["## Most confident errors", ""]
    if not errors:
        return [*lines, "No wrong predictions on the test split.", ""]
    rows = []
    for i, error in enumerate(errors, start=1):
        text = error["text"]
        if len(text) > ERROR_TEXT_CHARS:
            text = text[:ERROR_TEXT_CHARS].rstrip() + "…"
        rows.append([str(i), cell(text), cell(error["label"]), cell(error["predicted"]), num(error["confidence"])])
    return [*lines, *table(["#", "Text", "True label", "Predicted", "Confidence"], rows), ""]


def render_markdown(report: dict) -> str:
    """Render a report dict as a human-readable report.md."""
    metrics = report["metrics"]
    lines = [f"# {report['task']} report: {report['base_model']}", ""]
    context = [f"{key.replace('_', ' ')}: {report[key]}" for key in ("split", "n_test", "created_at") if key in report]
    if context:
        lines += [" · ".join(context), ""]
    lines += technique_sections(report)  # what the techniques bought comes first
    lines += warnings_section(report)
    headline_rows = [[title, num(metrics.get(key))] for key, title in _HEADLINE_ROWS if key in metrics]
    lines += ["## Headline metrics", "", *table(["Metric", "Value"], headline_rows), ""]
    lines += ["## Fine-tuned vs baseline", "", _comparison_line(report), ""]
    lines += per_class_section(report)
    lines += confusion_section(report)
    lines += _data_section(report.get("data"))
    lines += train_section(report.get("train"))
    lines += _errors_section(report.get("errors") or [])
    return "\n".join(lines).rstrip() + "\n"
