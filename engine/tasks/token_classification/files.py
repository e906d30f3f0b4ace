"""Reading tagged files for named-entity recognition: CoNLL (a token and its tag per line) and JSON/JSONL/tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Number
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import DataError
from engine.paths import max_upload_bytes
from engine.spec import DataSpec
from engine.tabular import FILE_MAGIC, decode_text, looks_like_json, missing_column, read_bytes, read_table
from engine.tasks.token_classification import CONLL_EXTENSIONS
from engine.tasks.token_classification.tags import ALLOWED_TAGS, parse_tag

TOKENS_NAMES = ("tokens", "words", "chars", "characters", "token", "word", "text", "sentence")
TAGS_NAMES = ("tags", "ner_tags", "ner", "bio", "bio_tags", "iob_tags", "labels", "label", "tag", "entity_tags")
TABLE_EXTENSIONS = (".json", ".jsonl", ".ndjson", ".parquet", ".pq", ".csv")


@dataclass
class TaggedFile:
    """One tagged file as read, before cleaning; `lines` holds each sentence's first line for CoNLL files."""

    path: Path
    format: str
    encoding: str | None
    tokens: list[list[str]]
    tags: list[list[str]]
    lines: list[int] | None
    columns: tuple[str, str]
    notices: list[str] = field(default_factory=list)

    def where(self, sentence: int, token: int | None = None) -> str:
        if self.lines is not None:
            line = self.lines[sentence] + (token or 0)
            return f"sentence {sentence + 1}, line {line}"
        return f"sentence {sentence + 1} (record {sentence + 1})" + (
            f", token {token + 1}" if token is not None else ""
        )


def _conll_column(tags_column: str | None) -> int | None:
    """0-based index of the tag column, None for the last column."""
    if tags_column is None or tags_column.strip().lower() == "last":
        return None
    value = tags_column.strip()
    if value.isdigit() and int(value) >= 2:
        return int(value) - 1
    raise DataError(
        f"tags_column {tags_column!r} is not a column of a CoNLL file; give the 1-based number of the tag column "
        "(2 or more: the token is column 1) or 'last'"
    )


def _conll_lines(text: str) -> list[tuple[int, list[str] | None]]:
    """(line number, fields) per line; None marks a sentence break (blank or -DOCSTART- line)."""
    lines = text.split("\n")
    sample = [line for line in lines[:2000] if line.strip()]
    # Tab-separated files may hold tokens with spaces; otherwise any run of whitespace separates columns.
    tabbed = sum("\t" in line for line in sample) > len(sample) / 2
    out: list[tuple[int, list[str] | None]] = []
    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        fields = [f.strip() for f in line.split("\t")] if tabbed else line.split()
        while len(fields) > 1 and not fields[-1]:
            fields.pop()
        out.append((lineno, None if not line.strip() or fields[0] == "-DOCSTART-" else fields))
    return out


def _looks_like_conll(text: str) -> bool:
    rows = [fields for _, fields in _conll_lines(text[:65536]) if fields][:200]
    tagged = sum(len(f) >= 2 and any(parse_tag(v) for v in f[1:]) for f in rows)
    return bool(rows) and tagged >= 0.9 * len(rows)


def _read_conll_file(path: Path, *, tags_column: str | None, raw: bytes, encoding: str | None = None) -> TaggedFile:
    text, encoding, notices = decode_text(raw, path, encoding)
    if not text.strip():
        raise DataError(f"{path.name} is empty (only whitespace); upload tagged sentences, one 'token TAG' per line")
    column = _conll_column(tags_column)
    sentences: list[tuple[int, list[str], list[str]]] = []  # (first line, tokens, tags)
    current: tuple[int, list[str], list[str]] | None = None
    for lineno, fields in _conll_lines(text):
        if fields is None:
            current = None
            continue
        if len(fields) < 2:
            raise DataError(
                f"{path.name} line {lineno} ({fields[0][:40]!r}) has no tag column; each token line needs the token "
                "and its tag separated by a space or a tab, with a blank line between sentences"
            )
        index = len(fields) - 1 if column is None else column
        if index >= len(fields):
            raise DataError(
                f"{path.name} line {lineno} has {len(fields)} columns but tags_column is {index + 1}; "
                "set tags_column to the number of the column holding the tags, or 'last'"
            )
        if current is None:
            current = (lineno, [], [])
            sentences.append(current)
        current[1].append(fields[0])
        current[2].append(fields[index])
    tokens, tags, starts = [s[1] for s in sentences], [s[2] for s in sentences], [s[0] for s in sentences]
    if not tokens:
        raise DataError(f"{path.name} holds no sentences (only -DOCSTART- or blank lines); add tagged sentences")
    shown = "last" if column is None else str(column + 1)
    return TaggedFile(path, "conll", encoding, tokens, tags, starts, ("1", shown), notices)


def _guess_token_columns(frame: pd.DataFrame, tokens_column: str | None, tags_column: str | None) -> tuple[str, str]:
    columns = [str(c) for c in frame.columns]
    for kind, name in (("tokens", tokens_column), ("tags", tags_column)):
        if name is not None and name not in columns:
            raise DataError(missing_column(kind, name, columns))

    def by_name(names: tuple[str, ...], exclude: str | None) -> str | None:
        lowered = {c.strip().lower(): c for c in columns if c != exclude}
        return next((lowered[n] for n in names if n in lowered), None)

    tokens = tokens_column or by_name(TOKENS_NAMES, tags_column)
    tags = tags_column or by_name(TAGS_NAMES, tokens)
    if tokens is None or tags is None or tokens == tags:
        raise DataError(
            f"could not tell which fields hold the tokens and the tags; fields are {columns}; set tokens_column and "
            "tags_column (each record needs a list of tokens and a list of tags of the same length)"
        )
    return tokens, tags


def _as_list(value: Any) -> list | str | None:
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    if isinstance(value, str):
        return value
    return None if value is None or pd.isna(value) else [value]


def _read_table_file(
    path: Path,
    *,
    fmt: str | None,
    tokens_column: str | None,
    tags_column: str | None,
    limit: int,
    encoding: str | None,
) -> TaggedFile:
    table = read_table(path, format=fmt, max_bytes=limit, encoding=encoding)
    tokens_name, tags_name = _guess_token_columns(table.frame, tokens_column, tags_column)
    file = TaggedFile(path, table.format, table.encoding, [], [], None, (tokens_name, tags_name), list(table.notices))
    for i, (raw_tokens, raw_tags) in enumerate(zip(table.frame[tokens_name], table.frame[tags_name], strict=True)):
        tokens, tags = _as_list(raw_tokens), _as_list(raw_tags)
        tags = tags.split() if isinstance(tags, str) else tags or []
        numbers = [t for t in tags if isinstance(t, Number)]
        if numbers:
            raise DataError(
                f"{path.name}: tags field '{tags_name}' holds numbers (e.g. {tags[:5]} in {file.where(i)}), and "
                "the file does not say which tag each number stands for; write the tags as strings such as "
                "'B-PER', 'I-PER', 'O'"
            )
        if isinstance(tokens, str):
            # A plain string: words when the tag count matches them, else characters (Chinese-style data).
            tokens = tokens.split() if len(tokens.split()) == len(tags) else list(tokens)
        tokens = tokens or []
        if len(tokens) != len(tags):
            raise DataError(
                f"{path.name}: {file.where(i)} has {len(tokens)} tokens but {len(tags)} tags; "
                f"each token in '{tokens_name}' needs exactly one tag in '{tags_name}'"
            )
        file.tokens.append(["" if t is None else str(t) for t in tokens])
        file.tags.append([str(t).strip() for t in tags])
    return file


def _check_tags(file: TaggedFile) -> None:
    unknown: dict[str, str] = {}
    for i, tags in enumerate(file.tags):
        for j, tag in enumerate(tags):
            if tag not in unknown and parse_tag(tag) is None:
                unknown[tag] = file.where(i, j)
    if unknown:
        shown = ", ".join(f"{tag!r} ({where})" for tag, where in list(unknown.items())[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise DataError(
            f"{file.path.name}: unknown tag(s) {shown}{more}; tags must be {ALLOWED_TAGS}. Check the tag column "
            f"(tags_column, now '{file.columns[1]}')"
        )


def read_conll(
    path: str | Path, *, tags_column: str | None = None, max_bytes: int | None = None
) -> tuple[list[list[str]], list[list[str]], list[str]]:
    """Read a CoNLL file (`token ... TAG` per line, blank line between sentences): tokens, raw tags, notices."""
    path = Path(path)
    file = _read_conll_file(path, tags_column=tags_column, raw=_read_raw(path, max_bytes))
    _check_tags(file)
    return file.tokens, file.tags, file.notices


def _read_raw(path: Path, max_bytes: int | None) -> bytes:
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path.name} is empty (0 bytes); upload tagged sentences (CoNLL, JSON or JSONL)")
    return read_bytes(path, max_upload_bytes() if max_bytes is None else max_bytes)


def read_tagged_file(path_name: str, data: DataSpec, limit: int) -> TaggedFile:
    """Read CoNLL or a table (JSON/JSONL/Parquet/CSV) by declared format, extension, then content."""
    path, declared = Path(path_name), data.format
    tokens_column, tags_column = getattr(data, "tokens_column", None), getattr(data, "tags_column", None)
    raw = _read_raw(path, limit)
    conll = declared == "conll" or (declared is None and path.suffix.lower() in CONLL_EXTENSIONS)
    binary = next((kind for magic, kind in FILE_MAGIC if raw.startswith(magic)), None)
    # Plain-text names (.txt, .tsv, none) may hold CoNLL or a table; the content decides.
    if not conll and not binary and declared in (None, "csv", "tsv") and path.suffix.lower() not in TABLE_EXTENSIONS:
        text = decode_text(raw, path, data.encoding)[0]
        conll = not looks_like_json(text) and _looks_like_conll(text)
    if conll:
        if binary:
            raise DataError(f"{path.name} is {binary}, not a CoNLL text file; upload one 'token TAG' per line")
        if tokens_column not in (None, "1"):
            raise DataError(f"tokens_column {tokens_column!r}: in CoNLL files the token is always column 1")
        file = _read_conll_file(path, tags_column=tags_column, raw=raw, encoding=data.encoding)
    else:
        columns = {"tokens_column": tokens_column, "tags_column": tags_column}
        file = _read_table_file(path, fmt=declared, **columns, limit=limit, encoding=data.encoding)
    _check_tags(file)
    return file
