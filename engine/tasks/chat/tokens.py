"""Chat tokenization: apply the model's chat template and put the loss on assistant tokens only."""

from __future__ import annotations

import json
import re
from typing import Any

IGNORE_INDEX = -100  # label value the loss skips
_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


class ChatTemplateError(ValueError):
    """The model's chat template cannot tell assistant tokens apart; pick another model."""


def render_template(tokenizer: Any, messages: list[dict], *, generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def encode_texts(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    # apply_chat_template(tokenize=True) tokenizes the rendered text the same way: the template holds the specials.
    return tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]


# For base models that know turn markers but ship no template (Gemma 3 270M): Gemma's own turn format, with
# generation markers so the loss falls on the model's turns. A system prompt opens the first user turn, as in
# Gemma's instruct template.
_TURN_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set system = messages[0]['content'] | trim + '\\n\\n' "
    "if messages and messages[0]['role'] == 'system' else '' -%}"
    "{%- for message in messages if message['role'] != 'system' -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<start_of_turn>model\\n' }}{% generation %}{{ message['content'] | trim }}<end_of_turn>{% endgeneration %}"
    "{{ '\\n' }}"
    "{%- else -%}"
    "{{ '<start_of_turn>user\\n' + (system if loop.first else '') + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif -%}"
)


def ensure_chat_template(tokenizer: Any) -> bool:
    """Give a base model's tokenizer a chat template from its own turn markers when it has none; True if added.

    The template is saved with the fine-tuned model, and its end-of-turn marker becomes the token generation stops at.
    """
    if getattr(tokenizer, "chat_template", None):
        return False
    vocab = tokenizer.get_vocab()
    if "<start_of_turn>" not in vocab or "<end_of_turn>" not in vocab:
        return False  # check_template then says what to pick instead
    tokenizer.chat_template = _TURN_TEMPLATE
    tokenizer.eos_token = "<end_of_turn>"
    return True


def check_template(tokenizer: Any) -> str:
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise ChatTemplateError(
            f"the tokenizer of {getattr(tokenizer, 'name_or_path', 'this model')!r} has no chat template; "
            "pick an instruct/chat model, or use plain-text data (format 'text') for continued pre-training"
        )
    return template if isinstance(template, str) else json.dumps(template)


def tokenize_conversation(tokenizer: Any, messages: list[dict], *, max_length: int) -> dict[str, list[int]]:
    """Apply the chat template; labels are the input ids on assistant tokens (answer + end of turn), else -100."""
    template = check_template(tokenizer)
    if _GENERATION_TAG.search(template):
        out = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
        if any(mask):
            labels = [i if m else IGNORE_INDEX for i, m in zip(ids, mask, strict=True)]
            return _truncated(ids, labels, max_length)
    ids, labels = _prefix_labels(tokenizer, messages)
    return _truncated(ids, labels, max_length)


def _prefix_labels(tokenizer: Any, messages: list[dict]) -> tuple[list[int], list[int]]:
    """Mark each assistant turn by rendering the conversation before it (with the generation prompt) and through it.

    Both renders must be token prefixes of the whole conversation; templates that rewrite earlier turns (or merge
    tokens across a turn boundary) fail that check and are reported instead of being masked wrongly.
    """
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    texts = [render_template(tokenizer, messages)]
    for i in turns:
        texts += [
            render_template(tokenizer, messages[:i], generation_prompt=True),
            render_template(tokenizer, messages[: i + 1]),
        ]
    full, *bounds = encode_texts(tokenizer, texts)
    labels = [IGNORE_INDEX] * len(full)
    for n, i in enumerate(turns):
        before, through = bounds[2 * n], bounds[2 * n + 1]
        start, end = len(before), len(through)
        if full[:start] != before or full[:end] != through or start >= end:
            raise ChatTemplateError(
                f"the chat template of {getattr(tokenizer, 'name_or_path', 'this model')!r} does not render "
                f"conversations prefix by prefix (at message {i + 1}, an assistant turn), so its assistant tokens "
                "cannot be told apart for the loss; pick a model whose template marks them with "
                "{% generation %} or renders each turn independently"
            )
        # What follows the end-of-turn token is the template's separator (ChatML's "\n"), not the answer.
        while end > start and not tokenizer.decode(full[end - 1 : end]).strip():
            end -= 1
        labels[start:end] = full[start:end]
    return full, labels


def _truncated(ids: list[int], labels: list[int], max_length: int) -> dict[str, list[int]]:
    ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def tokenize_text(tokenizer: Any, text: str, *, max_length: int) -> list[dict[str, list[int]]]:
    """Continued pre-training: the text (plus end-of-text) cut into chunks of at most max_length; labels = ids."""
    ids = tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"]
    eos = tokenizer.eos_token_id
    # Documents end with the end-of-text token so the model learns where one stops.
    if eos is not None and (not ids or ids[-1] != eos):
        ids = [*ids, eos]
    chunks = []
    for start in range(0, len(ids), max_length):
        piece = ids[start : start + max_length]
        # One token predicts nothing (labels shift by one), so a trailing single token is dropped unless alone.
        if len(piece) > 1 or not chunks:
            chunks.append({"input_ids": piece, "attention_mask": [1] * len(piece), "labels": list(piece)})
    return chunks


def prompt_messages(messages: list[dict]) -> tuple[list[dict], str]:
    """The conversation before its last assistant turn (the prompt) and that turn's content (the reference)."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        raise ValueError("the conversation has no assistant turn to use as the reference answer")
    return [dict(m) for m in messages[:last]], messages[last]["content"]


# --- reading -------------------------------------------------------------------------------------------------------
