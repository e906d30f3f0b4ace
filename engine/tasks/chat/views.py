"""Chat views: conversations and turns, held-out perplexity against the base model, generations side by side."""

from __future__ import annotations

from typing import Any

import pandas as pd

from engine.report_views import duration, length_sentence, notices_markdown


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
    lines += length_sentence(summary, "Conversation")
    truncated = summary.get("truncated") or summary.get("split_into_chunks") or {}
    if truncated:
        count = truncated.get("count", 0)
        limit = f"{truncated.get('max_length')} {truncated.get('unit', 'tokens')}"
        lines.append(
            f"- Truncation: {count} longer than {limit}" + (" (none is cut)." if not count else " are cut at the end.")
        )
    return "\n".join(lines + notices_markdown(summary))


def chat_headline_markdown(report: dict[str, Any], title: str) -> str:
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
    return "\n\n".join(part for part in (f"### Report: {title}", scope, table, verdict, training) if part)


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


def message_text(content: Any) -> str:
    """The text of a chat message's content: a string, or Gradio's list of {type: text, text} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, list | tuple):
        return "".join(message_text(part) for part in content)
    return "" if content is None else str(content)
