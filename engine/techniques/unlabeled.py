"""Read the unlabeled texts that domain pre-training and self-training use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.encodings import decode_text
from engine.errors import DataError
from engine.masking import add_masked_split, mask_records
from engine.paths import max_upload_bytes
from engine.tabular import likely_text_column, read_bytes, read_table

if TYPE_CHECKING:
    from engine.spec import DataSpec

TEXT_SUFFIXES = (".txt", ".text")
MIN_TEXTS = 10


def read_unlabeled(path: str | Path, *, text_column: str | None = None, encoding: str | None = None) -> list[str]:
    """The texts of a .txt file (one per line) or of a table's text column, blank ones and repeats dropped."""
    path = Path(path)
    if path.suffix.lower() in TEXT_SUFFIXES:
        text, _, _ = decode_text(read_bytes(path, max_upload_bytes()), path, encoding)
        texts = text.splitlines()
    else:
        frame = read_table(path, encoding=encoding).frame
        column = text_column if text_column in frame.columns else likely_text_column(frame)
        texts = ["" if value is None else str(value) for value in frame[column].tolist()]
    unique = list(dict.fromkeys(t.strip() for t in texts if t and t.strip() and t.strip().lower() != "nan"))
    if len(unique) < MIN_TEXTS:
        raise DataError(
            f"data.unlabeled: {path.name} holds {len(unique)} distinct non-blank text(s); give at least {MIN_TEXTS} "
            "(a .txt file with one text per line, or a table with a text column)"
        )
    return unique


def unlabeled_texts(data: DataSpec, summary: dict[str, Any]) -> list[str]:
    """The job's unlabeled texts (none without a file), masked as its labeled data is, counted in `summary` as
    split 'unlabeled'."""
    if not data.unlabeled:
        return []
    texts = read_unlabeled(data.unlabeled, text_column=data.text_column, encoding=data.encoding)
    if not data.mask_personal_data:
        return texts
    add_masked_split(summary, "unlabeled", mask_records(texts, data.mask_personal_data))
    return list(dict.fromkeys(texts))  # texts that differed only in what was masked are one text now
