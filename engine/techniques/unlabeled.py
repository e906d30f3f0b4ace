"""Read the unlabeled texts that domain pre-training and self-training use."""

from __future__ import annotations

from pathlib import Path

from engine.encodings import decode_text
from engine.errors import DataError
from engine.paths import max_upload_bytes
from engine.tabular import likely_text_column, read_bytes, read_table

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
