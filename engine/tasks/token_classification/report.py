"""The token-classification (NER) report: entity-level scores, error kinds with examples, and its report.md."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.collapse import below_baseline_warning, likely_cause, no_entities_warning, present
from engine.markdown import (
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
from engine.tasks.text_classification.report import ERROR_TEXT_CHARS
from engine.tasks.token_classification import NAME
from engine.tasks.token_classification.metrics import (
    BASELINE_NAME,
    ENTITIES_MODULE,
    ERROR_KINDS,
    entity_metrics,
    error_examples,
    repair_predictions,
)
from engine.techniques.markdown import technique_sections

_HEADLINE_ROWS = (
    ("micro_f1", "Micro F1 (entities)"),
    ("macro_f1", "Macro F1 (entity types)"),
    ("weighted_f1", "Weighted F1"),
    ("micro_precision", "Micro precision"),
    ("micro_recall", "Micro recall"),
    ("macro_precision", "Macro precision"),
    ("macro_recall", "Macro recall"),
    ("token_accuracy", "Token accuracy"),
)
_KIND_TITLES = {
    "missed": ("Missed entities", "a gold entity that no predicted entity overlaps"),
    "spurious": ("Spurious entities", "a predicted entity that overlaps no gold entity"),
    "wrong_type": ("Wrong type", "the right span with the wrong entity type"),
    "wrong_boundary": ("Wrong boundary", "a predicted entity overlaps the gold one but does not match its span"),
}
_SPLIT_NAMES = ("train", "validation", "test")


def collapse_warnings(scores: dict[str, Any], baseline: dict | None, data_summary: dict | None) -> list[str]:
    """What must be said first: a tagger that finds (nearly) no entities, or loses to the baseline, and why."""
    matrix = scores["confusion_matrix"]["matrix"]  # gold type by predicted type, "O" last in both
    gold = sum(sum(row) for row in matrix[:-1])
    found = sum(sum(row[:-1]) for row in matrix)
    cause = likely_cause(data_summary)
    return present(
        no_entities_warning(found, gold, cause),
        below_baseline_warning(scores["metrics"].get("micro_f1"), baseline, "micro_f1", "entity micro-F1", cause),
    )


def build_token_classification_report(
    *,
    base_model: str,
    labels: list[str],
    entity_types: list[str],
    test_tokens: Sequence[Sequence[str]],
    y_true_tags: Sequence[Sequence[str]],
    y_pred_tags: Sequence[Sequence[str]],
    baseline: dict | None,
    data_summary: dict,
    train_info: dict | None,
) -> dict[str, Any]:
    """Assemble the report of a token-classification model scored on the test split (tags as IOB2 strings).

    Predicted I-X tags that do not continue an X entity are read as starting one (as the playground shows them),
    and the number of such tags is recorded as `prediction_repairs`.
    """
    if not len(test_tokens) == len(y_true_tags) == len(y_pred_tags):
        raise ValueError(
            f"test_tokens, y_true_tags and y_pred_tags must pair up; got {len(test_tokens)}, {len(y_true_tags)} "
            f"and {len(y_pred_tags)} sentences"
        )
    known = set(labels)
    for name, sequences in (("y_true_tags", y_true_tags), ("y_pred_tags", y_pred_tags)):
        unknown = sorted({tag for tags in sequences for tag in tags} - known)
        if unknown:
            raise ValueError(f"{name} holds tags {unknown[:10]} that are not among the model's labels {labels}")
    predicted = [repair_predictions(tags) for tags in y_pred_tags]
    repaired = sum(
        a != b for raw, fixed in zip(y_pred_tags, predicted, strict=True) for a, b in zip(raw, fixed, strict=True)
    )
    scores = entity_metrics(y_true_tags, predicted, entity_types=entity_types)
    return {
        "task": NAME,
        "base_model": base_model,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "split": "test",
        "n_test": len(test_tokens),
        "n_test_tokens": sum(len(tokens) for tokens in test_tokens),
        "labels": list(entity_types),
        "tags": list(labels),
        "metrics": scores["metrics"],
        "per_class": scores["per_class"],
        "confusion_matrix": scores["confusion_matrix"],
        "error_kinds": scores["error_kinds"],
        "metrics_module": ENTITIES_MODULE,  # evaluate.load(metric_module_path(it)) scores alike
        "prediction_repairs": repaired,
        "baseline": baseline,
        "warnings": collapse_warnings(scores, baseline, data_summary),
        "errors": error_examples(test_tokens, y_true_tags, predicted),
        "data": data_summary,
        "train": train_info,
    }


def _comparison_line(report: dict) -> str:
    baseline = report.get("baseline")
    if not baseline or baseline.get("micro_f1") is None:
        return "No baseline was computed for this report."
    ours, theirs = report["metrics"]["micro_f1"], baseline["micro_f1"]
    name, diff = baseline.get("name", BASELINE_NAME), ours - theirs
    scores = f"({ours:.3f} vs {theirs:.3f})"
    if round(diff, 3) > 0:
        return f"**{diff:+.3f} micro-F1** over {name} {scores}."
    if round(diff, 3) == 0:
        return f"**Same micro-F1** as {name} {scores}: fine-tuning bought nothing over the cheap baseline."
    return (
        f"**Warning: the fine-tuned model is worse than {name}** by {-diff:.3f} micro-F1 {scores}. "
        "Try more epochs, a different learning rate or base model, or more training data."
    )


_CONFUSION_EXPLANATION = (
    "Entities, matched by exact span. Rows are the gold type, columns the type predicted for the same span; "
    "column O counts gold entities with no prediction of exactly their span, row O predicted entities with no "
    "gold entity of exactly their span."
)


def _short(text: str) -> str:
    return text if len(text) <= ERROR_TEXT_CHARS else text[:ERROR_TEXT_CHARS].rstrip() + "…"


def _errors_section(report: dict) -> list[str]:
    kinds = report.get("error_kinds") or {}
    lines = ["## Errors", ""]
    total = sum(kinds.values())
    if not total:
        return [*lines, "No entity errors on the test split.", ""]
    ordered = sorted(kinds, key=lambda kind: (-kinds[kind], ERROR_KINDS.index(kind) if kind in ERROR_KINDS else 9))
    rows = [
        [
            _KIND_TITLES.get(kind, (kind, ""))[0],
            str(kinds[kind]),
            f"{kinds[kind] / total:.0%}",
            _KIND_TITLES.get(kind, ("", ""))[1],
        ]
        for kind in ordered
    ]
    lines += [*table(["Kind", "Count", "Share", "Meaning"], rows), ""]
    repaired = report.get("prediction_repairs")
    if repaired:
        lines += [f"{repaired} predicted I- tag(s) did not continue an entity and were read as starting one.", ""]
    examples = report.get("errors") or []
    for kind in ordered:
        found = [e for e in examples if e.get("kind") == kind]
        if not found:
            continue
        rows = [
            [
                str(i),
                cell(_short(str(e.get("sentence", "")))),
                cell(e.get("entity", "")),
                cell(e.get("gold", "")),
                cell(
                    e.get("predicted", "")
                    if e.get("predicted_entity") in (None, e.get("entity"))
                    else f"{e.get('predicted')}: {e.get('predicted_entity')}"
                ),
            ]
            for i, e in enumerate(found, start=1)
        ]
        title = _KIND_TITLES.get(kind, (kind, ""))[0]
        lines += [f"### {title}: examples", "", *table(["#", "Sentence", "Entity", "Gold", "Predicted"], rows), ""]
    return lines


def _data_section(data: dict | None) -> list[str]:
    lines = ["## Data", ""]
    if not data:
        return [*lines, "No data summary was recorded.", ""]
    files = [f for f in data.get("files") or [] if isinstance(f, dict)]
    if files:
        rows = [
            [cell(f.get("split", "")), cell(Path(str(f.get("path", ""))).name)]
            + [cell(f.get(key, "")) for key in ("format", "encoding", "tag_scheme")]
            + [num(f.get(key)) for key in ("sentences_kept", "tokens")]
            for f in files
        ]
        lines += [*table(["Split", "File", "Format", "Encoding", "Tag scheme", "Sentences", "Tokens"], rows), ""]
    if data.get("tokens_column") or data.get("tags_column"):
        lines += [
            cell(f"Columns: tokens from '{data.get('tokens_column')}', tags from '{data.get('tags_column')}'."),
            "",
        ]
    splits = data.get("splits") or {}
    types = list(data.get("entity_types") or data.get("entities_per_type") or [])
    if types and splits:
        per_split = {s: (splits.get(s) or {}).get("entities_per_type") or {} for s in _SPLIT_NAMES}
        totals = data.get("entities_per_type") or {}
        rows = [[cell(t), *(num(per_split[s].get(t, 0)) for s in _SPLIT_NAMES), num(totals.get(t))] for t in types]
        rows.append(
            [
                "**Sentences**",
                *(num((splits.get(s) or {}).get("sentences")) for s in _SPLIT_NAMES),
                num(data.get("sentences")),
            ]
        )
        header = ["Entities", *(s.capitalize() for s in _SPLIT_NAMES), "Total"]
        lines += [*table(header, rows), ""]
        derived = [s for s in _SPLIT_NAMES if (splits.get(s) or {}).get("source", "file") != "file"]
        if derived:
            seed = f" (seed {data['seed']})" if data.get("seed") is not None else ""
            source = splits[derived[0]]["source"]
            lines += [f"{' and '.join(derived).capitalize()}: {cell(source)}{seed}.", ""]
    lines += lengths_line(data.get("length_tokens"))
    lines += [f"- {cell(sentence)}" for sentence in _data_sentences(data)]
    notices = data.get("notices") or []
    if notices:
        lines += ["", "Notices:", "", *(f"- {cell(notice)}" for notice in notices)]
    return [*lines, ""]


def _data_sentences(data: dict) -> list[str]:
    sentences = []
    scheme = data.get("tag_scheme")
    if isinstance(scheme, dict):
        converted = scheme.get("converted_tags") or 0
        done = f"; {converted} tag(s) converted to IOB2" if converted else ""
        sentences.append(f"Tag scheme: {scheme.get('detected', '?')}{done}.")
    repairs = data.get("repairs")
    if isinstance(repairs, dict):
        parts = []
        if repairs.get("i_without_b"):
            parts.append(f"{repairs['i_without_b']} entity start(s) with I- read as B-")
        if repairs.get("type_switch"):
            parts.append(f"{repairs['type_switch']} I- tag(s) after another type read as B-")
        sentences.append(f"Tag repairs: {', '.join(parts) if parts else 'none'}.")
    truncated = data.get("truncated")
    if isinstance(truncated, dict):
        count, limit = (
            truncated.get("count") or 0,
            f"{truncated.get('max_length', '?')} {truncated.get('unit', 'tokens')}",
        )
        sentences.append(
            f"Truncated: {count} sentence(s) longer than max_length {limit} lose their end."
            if count
            else f"Truncated: none (every sentence fits in max_length {limit})."
        )
    masked = masked_sentence(data)
    return [*sentences, masked] if masked else sentences


def render_ner_markdown(report: dict) -> str:
    """Render a token-classification report dict as a human-readable report.md."""
    metrics = report["metrics"]
    lines = [f"# {report.get('task', NAME)} report: {report['base_model']}", ""]
    context = [
        f"{key.replace('_', ' ')}: {report[key]}"
        for key in ("split", "n_test", "n_test_tokens", "created_at")
        if key in report
    ]
    if context:
        lines += [" · ".join(context), ""]
    rows = [[title, num(metrics.get(key))] for key, title in _HEADLINE_ROWS if key in metrics]
    lines += technique_sections(report)  # what the techniques bought comes first
    lines += warnings_section(report)
    lines += [
        "## Headline metrics",
        "",
        "Entity-level scores count an entity as found only when its type and exact span match (strict, IOB2).",
        "",
        *table(["Metric", "Value"], rows),
        "",
    ]
    lines += ["## Fine-tuned vs baseline", "", _comparison_line(report), ""]
    lines += per_class_section(report, title="Per entity type", column="Entity type", noun="types")
    lines += confusion_section(report, explanation=_CONFUSION_EXPLANATION, corner="gold")
    lines += _errors_section(report)
    lines += _data_section(report.get("data"))
    lines += train_section(report.get("train"))
    return "\n".join(lines).rstrip() + "\n"
