"""Load chat data (conversations, instruction/response pairs, plain text), validate, split, and tokenize it.

The loss of chat fine-tuning counts assistant tokens only: `tokenize_conversation` finds them with the template's
`{% generation %}` markers when it has them, and otherwise by rendering the conversation prefix by prefix.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import datasets
from jinja2 import TemplateError

from engine.errors import DataError
from engine.language import ESTIMATE_NOTICE, ESTIMATED_TOKENS, estimated_tokens, language_summary
from engine.masking import mask_records, record_masking
from engine.paths import max_upload_bytes
from engine.spec import DataSpec
from engine.splits import length_stats
from engine.tasks.chat.files import ROLES, ConversationFile, read_conversation_file
from engine.tasks.chat.tokens import (
    IGNORE_INDEX,
    ChatTemplateError,
    check_template,
    encode_texts,
    ensure_chat_template,
    prompt_messages,
    render_template,
    tokenize_conversation,
    tokenize_text,
)

__all__ = [
    "ChatData",
    "IGNORE_INDEX",
    "ChatTemplateError",
    "inspect_chat_data",
    "load_chat_data",
    "prompt_messages",
    "tokenize_conversation",
    "tokenize_text",
]

_SPLITS = ("train", "validation", "test")


@dataclass
class ChatData:
    """Train/validation/test datasets: column "messages" (list of {role, content}), or "text" for plain text."""

    train: datasets.Dataset
    validation: datasets.Dataset
    test: datasets.Dataset
    kind: str  # "conversations" | "instructions" | "text"
    summary: dict


# --- tokenizing ----------------------------------------------------------------------------------------------------


# --- loading -------------------------------------------------------------------------------------------------------


def _split(n: int, held_out: dict[str, float], seed: int, name: str) -> dict[str, list[int]]:
    need = 1 + len(held_out)
    if n < need:
        splits = " and ".join(["training", *held_out])
        raise DataError(
            f"too few examples to split: {name} has {n} usable example(s), at least {need} are needed (one each for "
            f"{splits}); add examples or supply separate validation and test files"
        )
    order = list(range(n))
    random.Random(seed).shuffle(order)
    counts = {s: max(1, round(n * fraction)) for s, fraction in held_out.items()}
    while sum(counts.values()) > n - 1:
        largest = max(counts, key=counts.__getitem__)
        counts[largest] -= 1
    out, start = {}, 0
    for s, count in counts.items():
        out[s] = sorted(order[start : start + count])
        start += count
    out["train"] = sorted(order[start:])
    return out


def _dataset(examples: list, kind: str) -> datasets.Dataset:
    if kind == "text":
        return datasets.Dataset.from_dict({"text": examples}, features=datasets.Features({"text": _STRING}))
    return datasets.Dataset.from_dict({"messages": examples}, features=_MESSAGES_FEATURES)


_STRING = datasets.Value("string")
_MESSAGES_FEATURES = datasets.Features({"messages": datasets.List({"role": _STRING, "content": _STRING})})


def load_chat_data(
    data: DataSpec, *, tokenizer: Any = None, max_length: int = 512, seed: int = 42, max_bytes: int | None = None
) -> ChatData:
    """Read, validate and split chat data (conversations, instruction pairs or plain text) and summarise it."""
    if tokenizer is not None:
        ensure_chat_template(tokenizer)  # a base model (Gemma 3 270M) learns chat in its own turn format
    limit = max_upload_bytes() if max_bytes is None else max_bytes
    columns: dict = {}
    files = {"train": read_conversation_file(data.train, data, limit, None, columns)}
    kind = files["train"].kind
    if kind == "text" and any(getattr(data, f"{c}_column", None) for c in ("messages", "instruction", "output")):
        raise DataError("plain-text data has no columns; remove messages/instruction/output_column or the format")
    for split in ("validation", "test"):
        if getattr(data, split):
            files[split] = read_conversation_file(getattr(data, split), data, limit, files["train"], columns)
    for found in files.values():
        if not found.examples:
            reasons = ", ".join(f"{n} with {why}" for why, n in found.dropped.items()) or "none"
            raise DataError(
                f"{found.path.name} has no usable example: of {found.read} rows, dropped: {reasons}; "
                "check the file and the column mapping"
            )

    # Every message's content (system, user and assistant) or every document, before the split and the template.
    masked = {s: mask_records(found.examples, data.mask_personal_data) for s, found in files.items()}
    # Separate files are used whole; only the splits without one are cut from the training file.
    held_out = {s: getattr(data, f"{s}_fraction") for s in ("validation", "test") if s not in files}
    indices = _split(len(files["train"].examples), held_out, seed, files["train"].path.name)
    parts = {s: [files["train"].examples[i] for i in idx] for s, idx in indices.items()}
    parts.update({s: found.examples for s, found in files.items() if s != "train"})

    if tokenizer is not None and kind != "text":
        check_template(tokenizer)
    summary = _summary(files, parts, kind, columns, tokenizer, max_length, seed)
    per_split = {s: [masked["train"][i] for i in idx] for s, idx in indices.items()}
    per_split.update({s: masked[s] for s in files if s != "train"})
    record_masking(summary, data.mask_personal_data, {s: per_split[s] for s in _SPLITS})
    if tokenizer is not None and kind != "text":
        # Fail now, not mid-training, when the template cannot separate assistant tokens; the conversation with
        # the most turns exercises the most turn boundaries.
        tokenize_conversation(tokenizer, max(parts["train"], key=len), max_length=max_length)
    return ChatData(*(_dataset(parts[s], kind) for s in _SPLITS), kind=kind, summary=summary)


def inspect_chat_data(data: DataSpec, *, tokenizer: Any = None, max_length: int = 512, seed: int = 42) -> dict:
    """The validation summary shown before training: counts, turns, lengths, truncation, splits and notices."""
    return load_chat_data(data, tokenizer=tokenizer, max_length=max_length, seed=seed).summary


# --- summary -------------------------------------------------------------------------------------------------------


def _template_call(tokenizer: Any, messages: list[dict], number: int, **kwargs: Any) -> str:
    try:
        return render_template(tokenizer, messages, **kwargs)
    except TemplateError as exc:
        raise DataError(f"the model's chat template rejects conversation {number} of the data: {exc}") from exc


def _conversation_lengths(conversations: list[list[dict]], tokenizer: Any) -> tuple[list[int], list[int], list[int]]:
    """Per conversation: its length, and where its first and its last assistant turn start, in tokens (estimated
    without a tokenizer)."""
    if tokenizer is None:
        lengths, firsts, lasts = [], [], []
        for c in conversations:
            words = [estimated_tokens(m["content"]) for m in c]
            turns = [i for i, m in enumerate(c) if m["role"] == "assistant"]
            lengths.append(sum(words))
            firsts.append(sum(words[: turns[0]]))
            lasts.append(sum(words[: turns[-1]]))
        return lengths, firsts, lasts
    texts = []
    for number, c in enumerate(conversations, start=1):
        turns = [i for i, m in enumerate(c) if m["role"] == "assistant"]
        texts += [
            _template_call(tokenizer, c, number),
            _template_call(tokenizer, c[: turns[0]], number, generation_prompt=True),
            _template_call(tokenizer, c[: turns[-1]], number, generation_prompt=True),
        ]
    ids = [
        len(row) for start in range(0, len(texts), 999) for row in encode_texts(tokenizer, texts[start : start + 999])
    ]
    return ids[0::3], ids[1::3], ids[2::3]


def _summary(
    files: dict[str, ConversationFile],
    parts: dict,
    kind: str,
    columns: dict,
    tokenizer: Any,
    max_length: int,
    seed: int,
) -> dict:
    examples = [e for s in _SPLITS for e in parts[s]]
    unit = ESTIMATED_TOKENS if tokenizer is None else "tokens"
    summary: dict[str, Any] = {
        "files": [
            {
                "split": s,
                "path": str(f.path),
                "format": f.format,
                "encoding": f.encoding,
                "rows_read": f.read,
                "examples": len(f.examples),
            }
            for s, f in files.items()
        ],
        "kind": kind,
        "columns": {k: v for k, v in columns.items() if k != "kind"},
        "examples": len(examples),
        "splits": {
            s: {"examples": len(parts[s]), "source": "file" if s in files else "split from the training file"}
            for s in _SPLITS
        },
    }
    if kind == "text":
        if tokenizer is None:
            lengths = [len(t.split()) for t in examples]
        else:
            lengths = [len(r) for r in tokenizer(examples, add_special_tokens=True, verbose=False)["input_ids"]]
        summary["documents"] = len(examples)
        summary["length_tokens"] = length_stats(lengths, unit)
        summary["split_into_chunks"] = {
            "count": sum(n > max_length for n in lengths),
            "max_length": max_length,
            "unit": "tokens",  # max_length is in tokens; the lengths may be estimated
        }
    else:
        roles = Counter(m["role"] for c in examples for m in c)
        lengths, first_starts, last_starts = _conversation_lengths(examples, tokenizer)
        summary["conversations"] = len(examples)
        summary["turns"] = {"total": sum(roles.values()), **{r: roles.get(r, 0) for r in ROLES}}
        summary["multi_turn"] = sum(sum(m["role"] == "assistant" for m in c) > 1 for c in examples)
        summary["with_system_prompt"] = sum(any(m["role"] == "system" for m in c) for c in examples)
        summary["length_tokens"] = length_stats(lengths, unit)
        summary["truncated"] = {
            "count": sum(n > max_length for n in lengths),
            "max_length": max_length,
            "unit": "tokens",  # max_length is in tokens; the lengths may be estimated
            "last_answer_lost": sum(n >= max_length for n in last_starts),
            "no_answer_left": sum(n >= max_length for n in first_starts),
        }
    texts = examples if kind == "text" else [m["content"] for c in examples for m in c]
    summary["language"] = language_summary(texts, tokenizer)
    keys = [json.dumps(e, sort_keys=True) for e in examples]
    train_keys = {json.dumps(e, sort_keys=True) for e in parts["train"]}
    summary["duplicates"] = {
        "exact": len(keys) - len(set(keys)),
        "across_splits": sum(json.dumps(e, sort_keys=True) in train_keys for s in _SPLITS[1:] for e in parts[s]),
    }
    dropped: Counter = sum((f.dropped for f in files.values()), Counter())
    summary["dropped"] = dict(dropped)
    summary["seed"] = seed
    file_notices = [n for f in files.values() for n in f.notices]
    summary["notices"] = file_notices + _notices(summary, parts, tokenizer)
    return summary


def _notices(summary: dict, parts: dict, tokenizer: Any) -> list[str]:
    """Plain-language warnings about what the counts mean for training."""
    notices = [f"dropped {n} row(s): {why}" for why, n in summary["dropped"].items()]
    dup = summary["duplicates"]
    if dup["exact"]:
        notices.append(f"{dup['exact']} example(s) repeat an earlier one exactly; they are kept")
    if dup["across_splits"]:
        notices.append(
            f"{dup['across_splits']} validation/test example(s) also appear in the training split; "
            "their loss will look better than on new conversations"
        )
    if len(parts["train"]) < 20:
        notices.append(
            f"only {len(parts['train'])} training example(s); a model needs dozens to pick up a style or a domain"
        )
    unit = "tokens"  # of max_length, whether the lengths were counted or estimated
    if summary["kind"] == "text":
        chunked = summary["split_into_chunks"]
        if chunked["count"]:
            notices.append(
                f"{chunked['count']} document(s) are longer than max_length={chunked['max_length']} {unit}; "
                "they will be cut into consecutive chunks"
            )
    else:
        truncated, total = summary["truncated"], summary["conversations"]
        if truncated["count"]:
            notices.append(
                f"{truncated['count']} conversation(s) ({truncated['count'] / total:.0%}) are longer than "
                f"max_length={truncated['max_length']} {unit} and will be truncated"
            )
        if truncated["last_answer_lost"]:
            lost = (
                f"{truncated['last_answer_lost']} conversation(s) lose their whole last assistant answer to truncation"
            )
            if truncated["no_answer_left"]:
                lost += f", {truncated['no_answer_left']} of them keep no assistant token at all (they teach nothing)"
            notices.append(f"{lost}; raise max_length or shorten those conversations")
        without_system = summary["conversations"] - summary["with_system_prompt"]
        if (
            tokenizer is not None
            and without_system
            and "system" in render_template(tokenizer, [{"role": "user", "content": "Hi"}])
        ):
            notices.append(
                f"the model's chat template adds its own default system prompt to the {without_system} "
                "conversation(s) without one; it carries no loss, and chatting uses the same template"
            )
    if unit == ESTIMATED_TOKENS:
        notices.append(ESTIMATE_NOTICE)
    return notices
