"""Views of the playground's interactions: tagged spans (highlighted, or as HTML) and chat histories.

Pure functions of plain data (summary and report dicts, predicted spans), tested without a browser like ui/views.py.
"""

from __future__ import annotations

import html
from typing import Any

from engine.tasks.chat.views import message_text

# ---- NER report --------------------------------------------------------------------------------------------------


# ---- chat report -------------------------------------------------------------------------------------------------


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


def chat_messages(history: list[dict[str, Any]], system_prompt: str | None = None) -> list[dict[str, str]]:
    """The conversation as the model reads it: an optional system prompt, then the {role, content} turns."""
    messages = [{"role": "system", "content": system_prompt.strip()}] if (system_prompt or "").strip() else []
    for turn in history or []:
        role = turn.get("role")
        text = message_text(turn.get("content"))
        if role in ("user", "assistant") and text:
            messages.append({"role": role, "content": text})
    return messages
