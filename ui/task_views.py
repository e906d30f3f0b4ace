"""Plain-language views for token classification (NER) and chat: data summaries, reports and tagged spans.

Pure functions of plain data (summary and report dicts, predicted spans), tested without a browser like ui/views.py.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from ui.views import _WORDS_NOTICE, _round, _short_model, baseline_sentence, duration, job_title
from worker.records import Job

TASK_WORDS = {
    "text-classification": "Text classification: one label per text",
    "token-classification": "Token classification (NER): find names, places, … inside a text",
    "chat": "Chat: teach an assistant to answer like your conversations",
}
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


def _notices(summary: dict[str, Any]) -> list[str]:
    notices = [n for n in summary.get("notices") or [] if _WORDS_NOTICE not in n and "counted in words" not in n]
    return ["", "**Worth a look:**", ""] + [f"- ⚠ {notice}" for notice in notices] if notices else []


def _lengths_line(summary: dict[str, Any], what: str) -> list[str]:
    lengths = summary.get("length_tokens") or {}
    if not lengths:
        return []
    unit = lengths.get("unit", "tokens")
    return [
        f"- {what} length in {unit}: typically {lengths.get('p50')}, 95% are at most {lengths.get('p95')}, "
        f"the longest has {lengths.get('max')}."
    ]


# ---- data --------------------------------------------------------------------------------------------------------


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
    lines += _lengths_line(summary, "Sentence")
    return "\n".join(lines + _notices(summary))


def chat_summary_markdown(summary: dict[str, Any], dataset_name: str = "") -> str:
    """The chat validation summary in sentences: conversations, turns, lengths and truncation."""
    name = f" **{dataset_name}**" if dataset_name else ""
    columns = summary.get("columns") or {}
    mapping = ", ".join(f"{k} from `{v}`" for k, v in columns.items() if v) or "plain text"
    splits = summary.get("splits") or {}
    if summary.get("kind") == "text":
        lines = [f"✓ **Ready to train.**{name}: {summary.get('documents', 0)} documents of plain text."]
    else:
        turns = summary.get("turns") or {}
        lines = [
            f"✓ **Ready to train a chat model.**{name}: {summary.get('conversations', 0)} conversations ({mapping}).",
            "",
            f"- Turns: {turns.get('user', 0)} from the user, {turns.get('assistant', 0)} from the assistant, "
            f"{turns.get('system', 0)} system prompts; {summary.get('multi_turn', 0)} conversations have "
            "several answers.",
        ]
    if splits:
        rows = {split: (info or {}).get("examples", 0) for split, info in splits.items()}
        lines.append(
            f"- {rows.get('train', 0)} examples to learn from, {rows.get('validation', 0)} to check progress "
            f"(validation) and {rows.get('test', 0)} kept aside to compare with the base model."
        )
    lines += _lengths_line(summary, "Conversation")
    truncated = summary.get("truncated") or summary.get("split_into_chunks") or {}
    if truncated:
        count = truncated.get("count", 0)
        limit = f"{truncated.get('max_length')} {truncated.get('unit', 'tokens')}"
        lines.append(
            f"- Truncation: {count} longer than {limit}" + (" (none is cut)." if not count else " are cut at the end.")
        )
    return "\n".join(lines + _notices(summary))


def task_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """The chart under the summary: rows per label, entities per type, or turns per role (label/rows columns)."""
    counts = summary.get("rows_per_label") or summary.get("entities_per_type") or {}
    if not counts and summary.get("turns"):
        counts = {role: n for role, n in summary["turns"].items() if role != "total"}
    return pd.DataFrame(
        {
            "label": pd.Series(list(counts), dtype="str"),
            "rows": pd.Series([int(n) for n in counts.values()], dtype="int64"),
        }
    )


# ---- NER report --------------------------------------------------------------------------------------------------


def _title(report: dict[str, Any], job: Job | None) -> str:
    if job is not None:
        return f"### Report: {job_title(job)} (job `{job.id[:8]}`)"
    return f"### Report: {report.get('task', '')} with {_short_model(str(report.get('base_model', '')))}"


def ner_headline_markdown(report: dict[str, Any], job: Job | None = None) -> str:
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
    return "\n\n".join(part for part in (_title(report, job), scope, table, ner_baseline_sentence(report)) if part)


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


def ner_errors_frame(report: dict[str, Any], limit: int = 20) -> pd.DataFrame:
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
    return pd.DataFrame(rows, columns=["Kind", "Sentence", "Entity", "True type", "Predicted"])


# ---- chat report -------------------------------------------------------------------------------------------------


def chat_headline_markdown(report: dict[str, Any], job: Job | None = None) -> str:
    """Held-out loss and perplexity of the base and the fine-tuned model, and how the training went."""
    metrics = report.get("metrics") or {}
    train = report.get("train") or {}
    n_test = report.get("n_test")
    scope = (
        f"Measured on {n_test} held-out conversations the model never saw, on the assistant's words only. "
        "*Perplexity*: how surprised the model is by the real answers (lower is better)."
        if n_test
        else ""
    )

    def cell(key: str, digits: int) -> str:
        value = metrics.get(key)
        return f"{value:.{digits}f}" if isinstance(value, int | float) else "–"

    table = "\n".join(
        [
            "| | Loss | Perplexity |",
            "|---|---|---|",
            f"| Base model (not fine-tuned) | {cell('base_loss', 4)} | {cell('base_perplexity', 2)} |",
            f"| **Fine-tuned** | **{cell('loss', 4)}** | **{cell('perplexity', 2)}** |",
        ]
    )
    ours, theirs = metrics.get("perplexity"), metrics.get("base_perplexity")
    if isinstance(ours, int | float) and isinstance(theirs, int | float):
        if ours < theirs:
            verdict = f"✓ **Fine-tuning helped**: perplexity fell from {theirs:.2f} to {ours:.2f}."
        else:
            verdict = (
                f"⚠ **No better than the base model**: perplexity {ours:.2f} vs {theirs:.2f}. Try more epochs, a "
                "higher learning rate or more conversations."
            )
    else:
        verdict = ""
    facts = []
    if train.get("method"):
        facts.append(f"method **{'LoRA' if train['method'] == 'lora' else train['method']}**")
    trainable, total = train.get("trainable_parameters"), train.get("total_parameters")
    if isinstance(trainable, int | float):
        share = f" ({trainable / total:.2%} of {total:,})" if isinstance(total, int | float) and total else ""
        facts.append(f"{int(trainable):,} trainable parameters{share}")
    if train.get("train_tokens_per_second"):
        facts.append(f"{train['train_tokens_per_second']:,.0f} training tokens/s")
    if train.get("wall_seconds"):
        facts.append(f"trained in {duration(train['wall_seconds'])}")
    speed = (report.get("generation") or {}).get("tokens_per_second")
    if speed:
        facts.append(f"generates {speed:,.1f} tokens/s")
    training = "Training: " + " · ".join(facts) + "." if facts else ""
    return "\n\n".join(part for part in (_title(report, job), scope, table, verdict, training) if part)


def generations_frame(report: dict[str, Any]) -> pd.DataFrame:
    """Held-out prompts with the reference answer, the base model's and the fine-tuned model's, side by side."""
    rows = [
        {
            "Prompt": prompt_text(g.get("prompt", "")),
            "Reference": str(g.get("reference", "")),
            "Base model": str(g.get("base", "")),
            "Fine-tuned": str(g.get("fine_tuned", "")),
        }
        for g in report.get("generations") or []
    ]
    return pd.DataFrame(rows, columns=["Prompt", "Reference", "Base model", "Fine-tuned"])


def prompt_text(prompt: Any) -> str:
    """A generation's prompt as text: a conversation (list of messages) reads as 'role: content' lines."""
    if not isinstance(prompt, list):
        return message_text(prompt)
    turns = [m for m in prompt if isinstance(m, dict)]
    if len(turns) == 1 and turns[0].get("role") == "user":
        return message_text(turns[0].get("content"))
    return "\n".join(f"{m.get('role', '?')}: {message_text(m.get('content'))}" for m in turns)


def report_score(report: dict[str, Any]) -> tuple[str, float | None]:
    """The one number runs of a task are compared by: macro-F1, micro-F1 for taggers, perplexity for chat."""
    metrics = report.get("metrics") or {}
    if report.get("task") == "chat":
        return "perplexity", _round(metrics.get("perplexity"))
    if report.get("task") == "token-classification":
        return "micro F1", _round(metrics.get("micro_f1"))
    return "macro F1", _round(metrics.get("macro_f1"))


# ---- tagged spans ------------------------------------------------------------------------------------------------


def highlighted(text: str, spans: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """The text cut into (piece, entity type or None) pairs, as gr.HighlightedText shows them."""
    pieces: list[tuple[str, str | None]] = []
    at = 0
    for span in sorted(spans, key=lambda s: (s["start"], s["end"])):
        start, end = int(span["start"]), int(span["end"])
        if start < at:  # overlapping spans do not come from the tagger; keep the first
            continue
        if start > at:
            pieces.append((text[at:start], None))
        pieces.append((text[start:end], str(span["type"])))
        at = end
    if at < len(text):
        pieces.append((text[at:], None))
    return pieces


# Distinct, readable background colours for up to eight entity types; more types cycle through them.
_COLOURS = ("#bfdbfe", "#bbf7d0", "#fde68a", "#fbcfe8", "#ddd6fe", "#fed7aa", "#a5f3fc", "#e5e7eb")


def spans_html(text: str, spans: list[dict[str, Any]], types: list[str] | None = None) -> str:
    """The text with each entity marked and labelled with its type, as escaped HTML (for the share page)."""
    order = list(types or []) + sorted({str(s["type"]) for s in spans} - set(types or []))
    parts = []
    for piece, kind in highlighted(text, spans):
        if kind is None:
            parts.append(html.escape(piece))
            continue
        colour = _COLOURS[order.index(kind) % len(_COLOURS)]
        parts.append(
            f'<mark class="entity" data-type="{html.escape(kind)}" style="background:{colour}">{html.escape(piece)}'
            f'<span class="type">{html.escape(kind)}</span></mark>'
        )
    return "".join(parts)


# ---- chat --------------------------------------------------------------------------------------------------------


def message_text(content: Any) -> str:
    """The text of a chat message's content: a string, or Gradio's list of {type: text, text} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, list | tuple):
        return "".join(message_text(part) for part in content)
    return "" if content is None else str(content)


def chat_messages(history: list[dict[str, Any]], system_prompt: str | None = None) -> list[dict[str, str]]:
    """The conversation as the model reads it: an optional system prompt, then the {role, content} turns."""
    messages = [{"role": "system", "content": system_prompt.strip()}] if (system_prompt or "").strip() else []
    for turn in history or []:
        role = turn.get("role")
        text = message_text(turn.get("content"))
        if role in ("user", "assistant") and text:
            messages.append({"role": role, "content": text})
    return messages
