"""Read an uploaded CSV, TSV, JSON, JSONL or Parquet file into a DataFrame, detecting format, encoding, delimiter."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engine.encodings import SAMPLE_CHARS, decode_text
from engine.errors import DataError
from engine.paths import max_upload_bytes

FORMATS = ("csv", "tsv", "json", "jsonl", "parquet")
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SUPPORTED = "supported formats are CSV, TSV, JSON, JSONL and Parquet"
DELIMITERS = (",", "\t", ";", "|")
_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}

# Magic numbers of files people upload by mistake; naming them tells the user what to export instead.
FILE_MAGIC = (
    (b"PAR1", "parquet"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook or zipped file?)"),
    (b"\xd0\xcf\x11\xe0", "an old-style Office document (an Excel .xls workbook?)"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"SQLite format 3", "an SQLite database"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


@dataclass(frozen=True)
class Table:
    """One uploaded file as read: every column, plus how it was decoded."""

    frame: pd.DataFrame
    path: Path
    format: str
    encoding: str | None
    notices: list[str] = field(default_factory=list)


def read_table(
    path: str | Path, *, format: str | None = None, max_bytes: int | None = None, encoding: str | None = None
) -> Table:
    """Read a CSV/TSV/JSON/JSONL/Parquet file, checking its content against its name; bad input raises DataError.

    `encoding` overrides the guess for text files (a wrong guess is what the decoding notice shows samples for).
    """
    path = Path(path)
    declared, notices = _declared_format(path, format)
    raw = read_bytes(path, max_upload_bytes() if max_bytes is None else max_bytes)
    binary = next((kind for magic, kind in FILE_MAGIC if raw.startswith(magic)), None)
    if binary == "parquet":
        if declared not in (None, "parquet"):
            raise _mislabeled(path, declared, "is a Parquet file", "parquet")
        return Table(_read_parquet(raw, path), path, "parquet", None, notices)
    if binary:
        raise DataError(
            f"unknown or mislabeled format: {path.name} is {binary}, not a data table; {SUPPORTED}. "
            "Export or save the data as a UTF-8 CSV file"
        )
    text, encoding, decode_notices = decode_text(raw, path, encoding)
    notices += decode_notices
    if not text.strip():
        raise DataError(f"{path.name} is empty (only whitespace); upload a file with a header row and data rows")
    looks_json = looks_like_json(text)
    if declared == "parquet":
        found = "JSON" if looks_json else "delimited text (CSV/TSV)"
        raise _mislabeled(
            path, declared, f"is not a Parquet file (it contains {found})", "json" if looks_json else "csv"
        )
    if looks_json:
        if declared in ("csv", "tsv"):
            raise _mislabeled(path, declared, "contains JSON", "json")
        frame, fmt, json_notices = _read_json(text, path, prefer_lines=declared == "jsonl")
        return Table(frame, path, fmt, encoding, notices + json_notices)
    if declared in ("json", "jsonl"):
        raise _mislabeled(path, declared, "does not contain JSON (it looks like delimited text such as CSV)", "csv")
    frame, delimiter = _read_delimited(text, path, preferred="\t" if declared == "tsv" else ",")
    fmt = "tsv" if delimiter == "\t" else "csv"
    if delimiter not in (",", "\t"):
        notices.append(f"{path.name}: columns are separated by {_DELIMITER_NAMES[delimiter]}s ('{delimiter}')")
    return Table(frame, path, fmt, encoding, notices)


def _declared_format(path: Path, format: str | None) -> tuple[str | None, list[str]]:
    if format is not None:
        if format not in FORMATS:
            raise DataError(f"format {format!r} is not supported; {SUPPORTED} ({', '.join(FORMATS)})")
        return format, []
    suffix = path.suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix], []
    # Unknown extensions are read by content; the notice explains the guess in case it is wrong.
    shown = f"extension '{suffix}'" if suffix else "no extension"
    return None, [f"{path.name} has {shown}; its format was detected from its content"]


def _mislabeled(path: Path, declared: str, found: str, suggested: str) -> DataError:
    return DataError(
        f"unknown or mislabeled format: {path.name} {found}, but was expected to be {declared.upper()}; {SUPPORTED}. "
        f"Rename the file to .{suggested} or set the format to '{suggested}'"
    )


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def read_bytes(path: Path, limit: int) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise DataError(f"data file not found: {path}; check the path or upload the file again") from exc
    except OSError as exc:
        raise DataError(f"cannot read data file {path}: {exc.strerror}") from exc
    if path.is_dir():
        raise DataError(
            f"{path} is a folder, not a data file; give the path of a CSV, TSV, JSON, JSONL or Parquet file"
        )
    if size > limit:
        raise DataError(
            f"{path.name} is {_size(size)}, over the upload limit of {_size(limit)}; "
            "use a smaller file or raise PLAYGROUND_MAX_UPLOAD_MB"
        )
    if size == 0:
        raise DataError(f"{path.name} is empty (0 bytes); upload a file with a header row and data rows")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read data file {path}: {exc.strerror}") from exc


def looks_like_json(text: str) -> bool:
    return re.match(r"\s*(\{|\[\s*[\[{\]\"])", text) is not None


def _read_json(text: str, path: Path, *, prefer_lines: bool) -> tuple[pd.DataFrame, str, list[str]]:
    """Parse a JSON document or JSON lines; a .json file holding JSON lines (or the reverse) is read with a notice."""
    if prefer_lines and not text.lstrip().startswith("["):
        return _read_jsonl(text, path), "jsonl", []
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and _first_line_is_object(text):
            frame = _read_jsonl(text, path)
            return frame, "jsonl", [f"{path.name} holds JSON lines (one record per line); read it as JSONL"]
        raise DataError(
            f"{path.name} is not valid JSON at line {exc.lineno}, column {exc.colno}: {json_problem(exc)}; fix that "
            "spot, or save the data as CSV"
        ) from exc
    notices = [f"{path.name} holds one JSON document, not JSON lines; read it as JSON"] if prefer_lines else []
    frame, records_notices = _records_frame(obj, path)
    return frame, "json", notices + records_notices


def _first_line_is_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text.lstrip().split("\n", 1)[0]), dict)
    except json.JSONDecodeError:
        return False


def _read_jsonl(text: str, path: Path) -> pd.DataFrame:
    records = []
    # Split on "\n" only: str.splitlines() would also break on U+2028, which JSON strings may hold unescaped.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path.name} line {lineno}, column {exc.colno} is not valid JSON: {json_problem(exc)}; each line "
                f"must hold one JSON object {_record_shape(records)}"
            ) from exc
        if not isinstance(record, dict):
            raise DataError(
                f"{path.name} line {lineno} holds a JSON {type(record).__name__}, not an object; each line must "
                f"hold one JSON object {_record_shape(records)}"
            )
        records.append(record)
    return _frame_or_empty(pd.DataFrame.from_records(records), path)


# json's own messages, in the words of someone who edits the file by hand.
_JSON_PROBLEMS = (
    (
        "Expecting ',' delimiter",
        'a comma is missing between two values, or a double quote inside a text is not written as \\"',
    ),
    ("Expecting ':' delimiter", "a colon is missing after a field name"),
    ("Expecting property name", "a field name is not in double quotes, or a comma follows the last field"),
    ("Expecting value", "a value is missing: an empty spot, a comma too many, or text without double quotes"),
    ("Unterminated string", "a text is not closed by a double quote"),
    ("Invalid control character", "a text holds a raw line break or tab; write it as \\n or \\t"),
    ("Invalid \\escape", "a backslash starts no valid escape; write a backslash as \\\\"),
    ("Extra data", "more follows the end of the JSON value (a missing comma or bracket between records?)"),
)


def json_problem(exc: json.JSONDecodeError) -> str:
    """What is wrong at the spot json.loads stopped, in plain words, with the text around it."""
    words = next((plain for start, plain in _JSON_PROBLEMS if exc.msg.startswith(start)), exc.msg.lower())
    near = exc.doc[max(0, exc.pos - 25) : exc.pos + 15].replace("\n", " ")
    return f"{words} (near «{near}»)" if near.strip() else words


def _record_shape(records: list[dict]) -> str:
    if records:  # the lines before it show what this file's records look like
        fields = ", ".join(f'"{key}": …' for key in list(records[0])[:4])
        return f"like the lines before it ({{{fields}}})"
    return (
        'such as {"text": "...", "label": "..."} (classification), {"tokens": [...], "tags": [...]} (tagging) '
        'or {"messages": [{"role": "user", "content": "..."}, ...]} (chat)'
    )


def _records_frame(obj: object, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Accept an array of records or an object of equal-length column lists; anything else is explained."""
    shape = 'an array of records like [{"text": "...", "label": "..."}] or an object of column lists'
    if isinstance(obj, list):
        bad = next((i for i, item in enumerate(obj) if not isinstance(item, dict)), None)
        if bad is not None:
            raise DataError(
                f"{path.name} is JSON but not records: item {bad} is a {type(obj[bad]).__name__}; "
                f"the file must hold {shape}"
            )
        return _frame_or_empty(pd.DataFrame.from_records(obj), path), []
    if isinstance(obj, dict) and obj:
        # A wrapper such as {"data": [...records...]} is common in API exports.
        wrapped = [k for k, v in obj.items() if isinstance(v, list) and v and all(isinstance(i, dict) for i in v)]
        if len(wrapped) == 1:
            frame = _frame_or_empty(pd.DataFrame.from_records(obj[wrapped[0]]), path)
            return frame, [f"{path.name}: read the records under the key '{wrapped[0]}'"]
        if all(isinstance(v, list) for v in obj.values()):
            lengths = {k: len(v) for k, v in obj.items()}
            if len(set(lengths.values())) > 1:
                raise DataError(f"{path.name} holds column lists of different lengths {lengths}; they must be equal")
            return _frame_or_empty(pd.DataFrame(obj), path), []
    raise DataError(
        f"{path.name} is JSON but not records ({type(obj).__name__} at the top level); it must hold {shape}"
    )


def _frame_or_empty(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    if frame.empty:
        raise DataError(f"{path.name} has no data rows; upload a file with at least one labeled example per row")
    # Column names are matched as strings everywhere (spec, UI), whatever type the file stored them as.
    return frame.rename(columns=str)


def _read_parquet(raw: bytes, path: Path) -> pd.DataFrame:
    try:
        frame = pq.read_table(pa.BufferReader(raw)).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        if "magic bytes" in str(exc) or "size is 0" in str(exc):
            raise DataError(
                f"{path.name} is cut short: the end of a Parquet file, which says where its data is, is missing "
                "(an interrupted upload or download?); upload the whole file again, or save the data as CSV"
            ) from exc
        raise DataError(
            f"{path.name} is a damaged Parquet file that cannot be read; write it again from the program that made "
            "it, or save the data as CSV"
        ) from exc
    return _frame_or_empty(frame, path)


def detect_delimiter(text: str, preferred: str) -> str:
    """Pick the delimiter that splits the header and first rows into the same number (>1) of fields."""
    sample = text[:SAMPLE_CHARS]
    truncated = len(text) > len(sample)
    if truncated and "\n" in sample:
        sample = sample[: sample.rfind("\n") + 1]
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    best, best_score = preferred, None
    for delimiter in DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if any(r)]
        except csv.Error:
            continue
        # The last sampled record may be cut off mid-field, so it does not vote.
        rows = rows[:-1] if truncated and len(rows) > 2 else rows
        rows = rows[:200]
        if not rows:
            continue
        width = len(rows[0])
        consistent = sum(len(r) == width for r in rows) / len(rows)
        score = (width > 1, consistent == 1.0, consistent, delimiter == sniffed, delimiter == preferred, width)
        if best_score is None or score > best_score:
            best, best_score = delimiter, score
    return best


def _read_delimited(text: str, path: Path, *, preferred: str) -> tuple[pd.DataFrame, str]:
    delimiter = detect_delimiter(text, preferred)
    buffer = io.StringIO(text, newline="")
    reader = csv.reader(buffer, delimiter=delimiter)
    header: list[str] | None = None
    rows: list[list[str]] = []
    start, offset = 1, 0  # line number and character offset where the next record begins
    last = (1, 0)  # the same for the last data row
    try:
        for row in reader:
            if header is None and (not row or (len(row) == 1 and not row[0].strip())):
                pass  # blank lines before the header
            elif header is None:
                header = _header(row, path)
            elif not row or (len(row) == 1 and not row[0].strip() and len(header) > 1):
                pass  # blank lines between records
            elif len(row) == len(header):
                rows.append(row)
                last = (start, offset)
            elif len(row) > len(header) and not any(f.strip() for f in row[len(header) :]):
                rows.append(row[: len(header)])  # trailing empty fields, as spreadsheet exports often add
                last = (start, offset)
            else:
                raise DataError(_ragged(path, start, row, len(header), delimiter))
            start, offset = reader.line_num + 1, buffer.tell()
    except csv.Error as exc:
        raise DataError(f"{path.name} line {start}: cannot parse ({exc}); check the quoting there") from exc
    if header is None or not rows:
        raise DataError(f"{path.name} has a header but no data rows; add one labeled example per row")
    _check_last_record_closed(text[last[1] :], path, last[0])
    return pd.DataFrame(rows, columns=header, dtype="str"), delimiter


def _ragged(path: Path, line: int, row: list[str], expected: int, delimiter: str) -> str:
    message = f"{path.name} line {line}: expected {expected} fields (as in the header), found {len(row)}; "
    if any("\n" in field for field in row):
        return message + "a value opened with a double quote there seems never to be closed"
    name = _DELIMITER_NAMES[delimiter]
    return message + f"put double quotes around values that contain a {name} ('{delimiter}') or a line break"


def _check_last_record_closed(rest: str, path: Path, line: int) -> None:
    """Lenient parsing lets a quote opened in the last record swallow the file's end; strict parsing notices."""
    if '"' not in rest:
        return
    try:
        list(csv.reader(io.StringIO(rest, newline=""), strict=True))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise DataError(
                f"{path.name} line {line}: a value opened with a double quote is never closed; "
                "close the quote or remove it"
            ) from exc


def _header(row: list[str], path: Path) -> list[str]:
    names = [name.strip() or f"column_{i + 1}" for i, name in enumerate(row)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"{path.name}: column name(s) {repeated} appear more than once in the header; rename them")
    return names


def missing_column(kind: str, name: str, columns: list[str]) -> str:
    """A column-not-found message listing the columns, with a close match when one differs only in case."""
    message = f"{kind} column '{name}' not found; columns are {columns}"
    close = [c for c in columns if c.strip().lower() == name.strip().lower()]
    return message + (f"; did you mean '{close[0]}'?" if close else "")


def likely_text_column(frame: pd.DataFrame) -> str:
    """The text column of an unlabeled table: one called text, the only column, or the one with the longest values."""
    columns = list(frame.columns)
    if "text" in columns:
        return "text"
    if len(columns) == 1:
        return columns[0]
    lengths = {c: frame[c].astype(str).str.len().mean() for c in columns}
    return max(lengths, key=lengths.get)
