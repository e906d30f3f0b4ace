"""Reading chat files: JSONL conversations (OpenAI messages, ShareGPT), instruction/answer tables and plain text."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import DataError
from engine.spec import DataSpec
from engine.tabular import FILE_MAGIC, decode_text, detect_delimiter, looks_like_json, read_bytes, read_table

ROLES = ("system", "user", "assistant")
ROLE_ALIASES = {"human": "user", "gpt": "assistant"}  # ShareGPT
MESSAGES_NAMES = ("messages", "conversation", "conversations", "chat")
INSTRUCTION_NAMES = ("instruction", "prompt", "question", "query")
INPUT_NAMES = ("input", "context")
OUTPUT_NAMES = ("output", "response", "answer", "completion")
TEXT_SUFFIXES = (".txt", ".text", ".md", ".markdown")
_ALLOWED_ROLES = (
    "allowed roles are system, user and assistant (ShareGPT's human and gpt are read as user and assistant)"
)


_MESSAGE_SHAPE = 'a list of {"role": ..., "content": ...} objects'
_BLANK_LINES = re.compile(r"\n[ \t]*\n")


@dataclass
class ConversationFile:
    """One file's usable examples (message lists, or texts for kind "text") and what was dropped on the way."""

    path: Path
    format: str
    encoding: str | None
    kind: str
    examples: list = field(default_factory=list)
    read: int = 0
    dropped: Counter = field(default_factory=Counter)
    notices: list[str] = field(default_factory=list)


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
    text, _, _ = decode_text(read_bytes(path, limit), path, data.encoding)
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


def _read_text(path: Path, limit: int, encoding: str | None) -> ConversationFile:
    raw = read_bytes(path, limit)
    binary = next((kind for magic, kind in FILE_MAGIC if raw.startswith(magic)), None)
    if binary:
        raise DataError(f"{path.name} is {binary}, not plain text; save the text as a UTF-8 .txt file")
    text, encoding, notices = decode_text(raw, path, encoding)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    documents = [d.strip() for d in _BLANK_LINES.split(text) if d.strip()]
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if len(documents) < 3 <= len(lines):
        # No blank lines between paragraphs: one document per line is the likelier layout.
        documents = lines
        notices.append(f"{path.name} has no blank lines between paragraphs; each line was read as one document")
    if not documents:
        raise DataError(f"{path.name} holds no text (only whitespace); upload a file of paragraphs of text")
    return ConversationFile(path, "text", encoding, "text", documents, read=len(documents), notices=notices)


def read_conversation_file(
    path: str, data: DataSpec, limit: int, like: ConversationFile | None, columns: dict
) -> ConversationFile:
    """Read one file; validation/test files (`like` given) must be of the training file's kind and columns."""
    file_path = Path(path)
    plain, file_format = _plain_text_or_format(file_path, data, limit)
    if like is not None:
        plain = like.kind == "text"
    if plain:
        return _read_text(file_path, limit, data.encoding)
    table = read_table(file_path, format=file_format, max_bytes=limit, encoding=data.encoding)
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
    found = ConversationFile(
        table.path, table.format, table.encoding, columns["kind"], read=len(frame), notices=table.notices
    )
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


def _where(found: ConversationFile, index: int) -> str:
    """'support.jsonl line 12' for JSON lines (blank lines counted), else 'data.json record 12'."""
    if found.format == "jsonl":
        text, _, _ = decode_text(found.path.read_bytes(), found.path, found.encoding)
        lines = [n for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
        return f"{found.path.name} line {lines[index]}"
    return f"{found.path.name} record {index + 1}"


def _read_conversations(values: list, found: ConversationFile) -> None:
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


def _read_instructions(frame: pd.DataFrame, columns: dict, found: ConversationFile) -> None:
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
