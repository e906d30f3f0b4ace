"""Load chat data (conversations, instruction/response pairs, plain text), validate, split, and tokenize it.

The loss of chat fine-tuning counts assistant tokens only: `tokenize_conversation` finds them with the template's
`{% generation %}` markers when it has them, and otherwise by rendering the conversation prefix by prefix.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd
from jinja2 import TemplateError

from engine.errors import DataError
from engine.paths import max_upload_bytes
from engine.spec import DataSpec
from engine.splits import length_stats
from engine.tabular import FILE_MAGIC, decode_text, detect_delimiter, looks_like_json, read_bytes, read_table
from engine.tasks.chat.tokens import (
    IGNORE_INDEX,
    ChatTemplateError,
    check_template,
    encode_texts,
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

ROLES = ("system", "user", "assistant")
ROLE_ALIASES = {"human": "user", "gpt": "assistant"}  # ShareGPT
MESSAGES_NAMES = ("messages", "conversation", "conversations", "chat")
INSTRUCTION_NAMES = ("instruction", "prompt", "question", "query")
INPUT_NAMES = ("input", "context")
OUTPUT_NAMES = ("output", "response", "answer", "completion")
TEXT_SUFFIXES = (".txt", ".text", ".md", ".markdown")
_SPLITS = ("train", "validation", "test")
_ALLOWED_ROLES = (
    "allowed roles are system, user and assistant (ShareGPT's human and gpt are read as user and assistant)"
)
_MESSAGE_SHAPE = 'a list of {"role": ..., "content": ...} objects'
_BLANK_LINES = re.compile(r"\n[ \t]*\n")


@dataclass
class ChatData:
    """Train/validation/test datasets: column "messages" (list of {role, content}), or "text" for plain text."""

    train: datasets.Dataset
    validation: datasets.Dataset
    test: datasets.Dataset
    kind: str  # "conversations" | "instructions" | "text"
    summary: dict


@dataclass
class _File:
    """One file's usable examples (message lists, or texts for kind "text") and what was dropped on the way."""

    path: Path
    format: str
    encoding: str | None
    kind: str
    examples: list = field(default_factory=list)
    read: int = 0
    dropped: Counter = field(default_factory=Counter)
    notices: list[str] = field(default_factory=list)


# --- tokenizing ----------------------------------------------------------------------------------------------------


def _plain_text_or_format(path: Path, data: DataSpec, limit: int) -> tuple[bool, str | None]:
    """(True, None) for plain text: format "text", Markdown, or .txt without JSON or a header naming chat columns.

    Otherwise (False, the format to read the table with).
    """
    if data.format is not None:
        return data.format == "text", data.format
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        return False, None
    if suffix in (".md", ".markdown"):
        return True, None
    text, _, _ = decode_text(read_bytes(path, limit), path)
    if not text.strip():
        return True, None
    if looks_like_json(text):
        return False, "json"  # read_table would take a .txt for CSV; "json" also accepts JSON lines
    first = next(line for line in text.splitlines() if line.strip())
    header = next(csv.reader(io.StringIO(first), delimiter=detect_delimiter(text, ",")), [])
    known = set(MESSAGES_NAMES + INSTRUCTION_NAMES + INPUT_NAMES + OUTPUT_NAMES)
    known |= {str(getattr(data, f"{c}_column", None)).lower() for c in ("messages", "instruction", "input", "output")}
    is_table = len(header) > 1 and bool({h.strip().lower() for h in header} & known)
    return not is_table, None


def _read_text(path: Path, limit: int) -> _File:
    raw = read_bytes(path, limit)
    binary = next((kind for magic, kind in FILE_MAGIC if raw.startswith(magic)), None)
    if binary:
        raise DataError(f"{path.name} is {binary}, not plain text; save the text as a UTF-8 .txt file")
    text, encoding, notices = decode_text(raw, path)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    documents = [d.strip() for d in _BLANK_LINES.split(text) if d.strip()]
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if len(documents) < 3 <= len(lines):
        # No blank lines between paragraphs: one document per line is the likelier layout.
        documents = lines
        notices.append(f"{path.name} has no blank lines between paragraphs; each line was read as one document")
    if not documents:
        raise DataError(f"{path.name} holds no text (only whitespace); upload a file of paragraphs of text")
    return _File(path, "text", encoding, "text", documents, read=len(documents), notices=notices)


def _read_file(path: str, data: DataSpec, limit: int, like: _File | None, columns: dict) -> _File:
    """Read one file; validation/test files (`like` given) must be of the training file's kind and columns."""
    file_path = Path(path)
    plain, file_format = _plain_text_or_format(file_path, data, limit)
    if like is not None:
        plain = like.kind == "text"
    if plain:
        return _read_text(file_path, limit)
    table = read_table(file_path, format=file_format, max_bytes=limit)
    frame = table.frame
    names = [str(c) for c in frame.columns]
    if like is None:
        columns.update(_resolve_columns(names, data, table.path.name))
    else:
        missing = [c for k, c in columns.items() if k != "kind" and c is not None and c not in names]
        if missing:
            raise DataError(
                f"{file_path.name} has no column '{missing[0]}' (used in the training file); columns are {names}"
            )
    found = _File(table.path, table.format, table.encoding, columns["kind"], read=len(frame), notices=table.notices)
    if columns["kind"] == "conversations":
        _read_conversations(frame[columns["messages"]].tolist(), found)
    else:
        _read_instructions(frame, columns, found)
    return found


def _find(names: list[str], wanted: tuple[str, ...]) -> str | None:
    lowered = {n.strip().lower(): n for n in reversed(names)}
    return next((lowered[w] for w in wanted if w in lowered), None)


def _resolve_columns(names: list[str], data: DataSpec, file_name: str) -> dict:
    """Pick the messages column, or the instruction/input/output columns: mapped ones checked, others guessed."""
    mapped = {c: getattr(data, f"{c}_column", None) for c in ("messages", "instruction", "input", "output")}
    for kind, name in mapped.items():
        if name is not None and name not in names:
            raise DataError(f"{kind} column '{name}' not found in {file_name}; columns are {names}")
    if mapped["messages"] and any(mapped[c] for c in ("instruction", "input", "output")):
        raise DataError("set either messages_column or instruction/input/output_column, not both")
    if mapped["messages"] or not any(mapped.values()):
        messages = mapped["messages"] or _find(names, MESSAGES_NAMES)
        if messages:
            return {"kind": "conversations", "messages": messages}
    instruction = mapped["instruction"] or _find(names, INSTRUCTION_NAMES)
    output = mapped["output"] or _find(names, OUTPUT_NAMES)
    if instruction is None or output is None:
        lacking = [
            f"{kind} column ({'/'.join(guesses)})"
            for kind, col, guesses in (
                ("instruction", instruction, INSTRUCTION_NAMES),
                ("output", output, OUTPUT_NAMES),
            )
            if col is None
        ]
        raise DataError(
            f"{file_name} has no usable chat data: no messages column ({'/'.join(MESSAGES_NAMES)}) and no "
            f"{' and no '.join(lacking)}; columns are {names}. Set messages_column, or instruction_column and "
            "output_column"
        )
    found_input = mapped["input"] or _find([n for n in names if n not in (instruction, output)], INPUT_NAMES)
    return {"kind": "instructions", "instruction": instruction, "input": found_input, "output": output}


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, (list, dict, np.ndarray, str)) and pd.isna(value))


def _where(found: _File, index: int) -> str:
    """'support.jsonl line 12' for JSON lines (blank lines counted), else 'data.json record 12'."""
    if found.format == "jsonl":
        text, _, _ = decode_text(found.path.read_bytes(), found.path)
        lines = [n for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
        return f"{found.path.name} line {lines[index]}"
    return f"{found.path.name} record {index + 1}"


def _read_conversations(values: list, found: _File) -> None:
    for index, value in enumerate(values):
        if _missing(value):
            found.dropped["no messages"] += 1
            continue
        if isinstance(value, str) and value.lstrip().startswith("["):
            # CSV cells can hold the messages as JSON text.
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{_where(found, index)}: malformed messages: the text is not valid JSON ({exc.msg}); "
                    f"expected {_MESSAGE_SHAPE}"
                ) from exc
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, list):
            raise DataError(
                f"{_where(found, index)}: malformed messages: expected {_MESSAGE_SHAPE}, got a "
                f"{type(value).__name__} ({str(value)[:60]!r})"
            )
        if not value:
            found.dropped["empty conversation"] += 1
            continue
        found.examples.append(_conversation(value, lambda i=index: _where(found, i)))


def _conversation(items: list, where: Any) -> list[dict]:
    """Normalise one conversation to [{role, content}] and check it can be trained on; `where()` names it."""
    messages = []
    for n, item in enumerate(items, start=1):
        if isinstance(item, dict) and "role" in item and "content" in item:
            role, content = item["role"], item["content"]
        elif isinstance(item, dict) and "from" in item and "value" in item:
            role, content = item["from"], item["value"]
        else:
            shown = str(item)[:80]
            raise DataError(
                f"{where()}: malformed messages: message {n} is {shown!r}; expected {_MESSAGE_SHAPE} "
                '(or ShareGPT {"from": ..., "value": ...})'
            )
        if not isinstance(role, str) or not isinstance(content, str | None):
            raise DataError(
                f"{where()}: malformed messages: message {n} needs a text role and text content, "
                f"got role {role!r} and content of type {type(content).__name__}"
            )
        key = role.strip().lower()
        key = ROLE_ALIASES.get(key, key)
        if key not in ROLES:
            raise DataError(f"{where()}: unknown role '{role}' in message {n}; {_ALLOWED_ROLES}")
        content = content or ""
        if key == "assistant" and not content.strip():
            raise DataError(
                f"{where()}: message {n} is an empty assistant turn; give every assistant turn an answer or remove it"
            )
        messages.append({"role": key, "content": content})
    first = next((m["role"] for m in messages if m["role"] != "system"), None)
    if first == "assistant":
        raise DataError(
            f"{where()} starts with an assistant turn; after an optional system prompt, a conversation must "
            "start with a user turn"
        )
    if messages[-1]["role"] != "assistant":
        raise DataError(
            f"{where()} does not end with an assistant turn (its last message is a {messages[-1]['role']} turn); "
            "every conversation must end with the assistant's answer: add it or remove the trailing turn"
        )
    return messages


def _read_instructions(frame: pd.DataFrame, columns: dict, found: _File) -> None:
    def cells(column: str | None) -> list[str]:
        if column is None:
            return [""] * len(frame)
        return ["" if _missing(v) else str(v) for v in frame[column].tolist()]

    for instruction, extra, output in zip(
        cells(columns["instruction"]), cells(columns["input"]), cells(columns["output"]), strict=True
    ):
        if not instruction.strip():
            found.dropped[f"blank instruction in '{columns['instruction']}'"] += 1
        elif not output.strip():
            found.dropped[f"blank output in '{columns['output']}'"] += 1
        else:
            prompt = instruction + ("\n\n" + extra if extra.strip() else "")
            found.examples.append([{"role": "user", "content": prompt}, {"role": "assistant", "content": output}])


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
    limit = max_upload_bytes() if max_bytes is None else max_bytes
    columns: dict = {}
    files = {"train": _read_file(data.train, data, limit, None, columns)}
    kind = files["train"].kind
    if kind == "text" and any(getattr(data, f"{c}_column", None) for c in ("messages", "instruction", "output")):
        raise DataError("plain-text data has no columns; remove messages/instruction/output_column or the format")
    for split in ("validation", "test"):
        if getattr(data, split):
            files[split] = _read_file(getattr(data, split), data, limit, files["train"], columns)
    for found in files.values():
        if not found.examples:
            reasons = ", ".join(f"{n} with {why}" for why, n in found.dropped.items()) or "none"
            raise DataError(
                f"{found.path.name} has no usable example: of {found.read} rows, dropped: {reasons}; "
                "check the file and the column mapping"
            )

    # Separate files are used whole; only the splits without one are cut from the training file.
    held_out = {s: getattr(data, f"{s}_fraction") for s in ("validation", "test") if s not in files}
    indices = _split(len(files["train"].examples), held_out, seed, files["train"].path.name)
    parts = {s: [files["train"].examples[i] for i in idx] for s, idx in indices.items()}
    parts.update({s: found.examples for s, found in files.items() if s != "train"})

    if tokenizer is not None and kind != "text":
        check_template(tokenizer)
    summary = _summary(files, parts, kind, columns, tokenizer, max_length, seed)
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
    """Per conversation: its length, and where its first and its last assistant turn start, in tokens or words."""
    if tokenizer is None:
        lengths, firsts, lasts = [], [], []
        for c in conversations:
            words = [len(m["content"].split()) for m in c]
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
    files: dict[str, _File], parts: dict, kind: str, columns: dict, tokenizer: Any, max_length: int, seed: int
) -> dict:
    examples = [e for s in _SPLITS for e in parts[s]]
    unit = "words" if tokenizer is None else "tokens"
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
            "unit": unit,
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
            "unit": unit,
            "last_answer_lost": sum(n >= max_length for n in last_starts),
            "no_answer_left": sum(n >= max_length for n in first_starts),
        }
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
    unit = summary["length_tokens"]["unit"]
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
    if unit == "words":
        notices.append("lengths are counted in words (no tokenizer given); token counts are usually higher")
    return notices
