"""Load labeled text-classification data: map columns, clean, split and summarise what training will see."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import datasets
import numpy as np
import pandas as pd

from engine.errors import DataError
from engine.language import ESTIMATE_NOTICE, ESTIMATED_TOKENS, estimated_tokens, language_summary
from engine.masking import mask_records, record_masking
from engine.paths import max_upload_bytes
from engine.spec import DataSpec
from engine.splits import length_stats, stratified_split
from engine.tabular import Table, missing_column, read_table

__all__ = [
    "ClassificationData",
    "LabeledFile",
    "Table",
    "guess_columns",
    "inspect_data",
    "load_classification_data",
    "load_labeled_file",
    "read_table",
]

TEXT_NAMES = ("text", "sentence", "review", "content", "body", "comment", "document", "utterance", "message", "tweet")
LABEL_NAMES = (
    "label",
    "labels",
    "class",
    "category",
    "sentiment",
    "target",
    "verdict",
    "intent",
    "tag",
    "topic",
    "emotion",
)
MAX_LABELS = 1000
# More distinct numbers than this is a score to predict, not a set of classes.
MAX_NUMERIC_LABELS = 20
IMBALANCE_RATIO = 10
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_GUESS_SAMPLE = 2000
_SPLITS = ("train", "validation", "test")


@dataclass
class ClassificationData:
    """Train/validation/test datasets with columns "text" and "label" (an id into `labels`), plus the summary."""

    train: datasets.Dataset
    validation: datasets.Dataset
    test: datasets.Dataset
    labels: list[str]
    summary: dict


def guess_columns(
    frame: pd.DataFrame, *, text_column: str | None = None, label_column: str | None = None
) -> tuple[str, str]:
    """Return (text_column, label_column): given names are checked, missing ones guessed from names and values."""
    columns = [str(c) for c in frame.columns]
    for kind, name in (("text", text_column), ("label", label_column)):
        if name is not None and name not in columns:
            raise DataError(missing_column(kind, name, columns))
    if text_column is not None and text_column == label_column:
        raise DataError(f"text column and label column are both '{text_column}'; they must be different columns")
    if len(columns) < 2:
        raise DataError(
            f"found only one column {columns}: need a text column and a label column; "
            "check that the header names both and that values are separated by commas or tabs"
        )
    sample = frame.head(_GUESS_SAMPLE)
    text = text_column or _guess_text_column(sample, exclude=label_column)
    label = label_column or _guess_label_column(sample, exclude=text)
    return text, label


def _name_rank(name: str, preferred: tuple[str, ...], other: tuple[str, ...]) -> int:
    """2 for an exact preferred name, 1 when a word of the name is preferred (e.g. review_body), else 0."""
    key = name.strip().lower()
    if key in preferred:
        return 2
    words = set(re.split(r"[^a-z0-9]+", key))
    return 1 if words & set(preferred) and not words & set(other) else 0


def _non_blank(series: pd.Series) -> list[Any]:
    return [v for v in series.tolist() if _is_present(v) and str(v).strip()]


def _guess_text_column(sample: pd.DataFrame, exclude: str | None) -> str:
    candidates = []
    for position, name in enumerate(str(c) for c in sample.columns):
        if name == exclude or name.strip().lower() in LABEL_NAMES:
            continue
        values = _non_blank(sample[name])
        words = [v for v in values if isinstance(v, str) and not _NUMBER.fullmatch(v.strip())]
        # A text column is mostly non-numeric strings; ids and scores stored as strings in CSV are not. An empty
        # column stays a candidate so that an all-blank "text" column is reported as such, not as missing.
        if len(words) >= 0.9 * len(values):
            average = sum(len(v) for v in words) / max(1, len(words))
            candidates.append((_name_rank(name, TEXT_NAMES, LABEL_NAMES), average, -position, name))
    if not candidates:
        columns = [str(c) for c in sample.columns]
        raise DataError(
            f"no column looks like text (they are numeric or empty); columns are {columns}; set text_column"
        )
    return max(candidates)[-1]


def _guess_label_column(sample: pd.DataFrame, exclude: str) -> str:
    ranked, fallback = [], []
    for position, name in enumerate(str(c) for c in sample.columns):
        if name == exclude:
            continue
        values = _non_blank(sample[name])
        if not values:
            continue
        distinct = len({str(v).strip() for v in values if not isinstance(v, (list, dict, np.ndarray))})
        rank = _name_rank(name, LABEL_NAMES, TEXT_NAMES)
        exact_order = LABEL_NAMES.index(name.strip().lower()) if rank == 2 else len(LABEL_NAMES)
        if rank:
            ranked.append((-rank, exact_order, distinct, position, name))
        elif 2 <= distinct <= max(2, len(values) // 2):
            # Few distinct values relative to rows: categories, not ids or free text.
            fallback.append((distinct / len(values), position, name))
    if ranked:
        return min(ranked)[-1]
    if fallback:
        return min(fallback)[-1]
    columns = [str(c) for c in sample.columns]
    raise DataError(
        f"could not tell which column holds the labels; columns are {columns} and text is in '{exclude}'; "
        "set label_column"
    )


def _is_present(value: Any) -> bool:
    if isinstance(value, (list, dict, np.ndarray)):
        return True  # pd.isna would answer element-wise; the caller reports such values
    return value is not None and not pd.isna(value)


def _as_text(value: Any, column: str) -> str | None:
    if not _is_present(value):
        return None
    if isinstance(value, (list, dict, np.ndarray)):
        raise DataError(f"text column '{column}' holds lists or objects, not text (e.g. {str(value)[:60]})")
    return value if isinstance(value, str) else str(value)


def _as_label(value: Any, column: str) -> str | None:
    """The user's label as a stripped string; integral numbers lose a trailing .0 (pandas turns int+NaN to float)."""
    if not _is_present(value):
        return None
    if isinstance(value, (list, dict, np.ndarray)):
        raise DataError(
            f"label column '{column}' holds lists (e.g. {str(value)[:60]}): this task needs exactly one label per row"
        )
    if isinstance(value, (bool, np.bool_)):
        label = str(bool(value))
    elif isinstance(value, Integral) or (isinstance(value, Real) and float(value).is_integer()):
        label = str(int(value))
    else:
        label = str(value).strip()
    return None if label.lower() in MISSING_MARKERS else label


# What spreadsheets and exports write in an empty cell (pandas' own list): a missing label, never a class.
MISSING_MARKERS = frozenset(
    {"", "nan", "-nan", "null", "none", "n/a", "na", "#n/a", "#na", "<na>", "#n/a n/a", "-1.#ind", "1.#ind", "nil"}
)


@dataclass
class _Rows:
    texts: list[str]
    labels: list[str]
    read: int
    blank_text: int
    missing_label: int


def _clean(table: Table, text_column: str, label_column: str) -> _Rows:
    texts, labels, blank, missing = [], [], 0, 0
    for raw_text, raw_label in zip(table.frame[text_column].tolist(), table.frame[label_column].tolist(), strict=True):
        text = _as_text(raw_text, text_column)
        if text is None or not text.strip():
            blank += 1
            continue
        label = _as_label(raw_label, label_column)
        if label is None:
            missing += 1
            continue
        texts.append(text)
        labels.append(label)
    return _Rows(texts, labels, len(table.frame), blank, missing)


def _check_labels(labels: set[str], column: str) -> list[str]:
    """Reject regression targets, too many or too few classes; return label names in id order."""
    numeric = all(_NUMBER.fullmatch(label) for label in labels)
    if numeric and (len(labels) > MAX_NUMERIC_LABELS or not all(float(label).is_integer() for label in labels)):
        examples = ", ".join(sorted(labels, key=float)[:: max(1, len(labels) // 4)][:4])
        raise DataError(
            f"label column '{column}' holds {len(labels)} distinct numbers (e.g. {examples}): it looks like a "
            "regression target (predicting a number), which text classification does not do; use a column of "
            f"categories, or group the numbers into at most {MAX_NUMERIC_LABELS} classes"
        )
    if len(labels) > MAX_LABELS:
        raise DataError(
            f"label column '{column}' has {len(labels)} distinct labels, more than the {MAX_LABELS} allowed; "
            "check that it is the right column (not an id or free text) or merge rare labels"
        )
    if len(labels) < 2:
        raise DataError(
            f"label column '{column}' has only one label ({sorted(labels)[0]!r}) after cleaning; "
            "classification needs examples of at least two labels"
        )
    # Integer class ids sort numerically so that label "2" keeps id 2 even past "10".
    return sorted(labels, key=lambda label: (float(label), label)) if numeric else sorted(labels)


def _lengths(texts: list[str], tokenizer: Any) -> tuple[list[int], str]:
    if tokenizer is None:
        return [estimated_tokens(t) for t in texts], ESTIMATED_TOKENS
    lengths: list[int] = []
    for start in range(0, len(texts), 1000):
        # verbose=False: the over-length warning would repeat what the truncation count already reports.
        ids = tokenizer(texts[start : start + 1000], add_special_tokens=True, verbose=False)["input_ids"]
        lengths.extend(len(row) for row in ids)
    return lengths, "tokens"


def _per_label(labels: list[str], names: list[str]) -> dict[str, int]:
    counts = Counter(labels)
    return {name: counts.get(name, 0) for name in names}


def _dataset(rows: _Rows, indices: list[int], names: list[str]) -> datasets.Dataset:
    ids = {name: i for i, name in enumerate(names)}
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    return datasets.Dataset.from_dict(
        {"text": [rows.texts[i] for i in indices], "label": [ids[rows.labels[i]] for i in indices]}, features=features
    )


def load_classification_data(
    data: DataSpec, *, tokenizer: Any = None, max_length: int = 128, seed: int = 42, max_bytes: int | None = None
) -> ClassificationData:
    """Read, map, clean and split the files of `data` into train/validation/test datasets and a summary."""
    limit = max_upload_bytes() if max_bytes is None else max_bytes
    tables, text_column, label_column = _read_tables(data, limit)
    rows = {split: _clean(table, text_column, label_column) for split, table in tables.items()}
    masked = {split: mask_records(found.texts, data.mask_personal_data) for split, found in rows.items()}
    for split, found in rows.items():
        if not found.texts:
            raise DataError(
                f"no usable rows left in {tables[split].path.name}: of {found.read} rows, {found.blank_text} have "
                f"blank text in '{text_column}' and {found.missing_label} have no label in '{label_column}'; "
                "check the column mapping and the file"
            )
    names = _check_labels({label for found in rows.values() for label in found.labels}, label_column)
    unseen = sorted(
        {label for split in rows if split != "train" for label in rows[split].labels} - set(rows["train"].labels)
    )
    if unseen:
        raise DataError(
            f"labels {unseen[:10]} appear in the validation/test file but not in the training file "
            f"{tables['train'].path.name}; a model cannot learn them; add training examples or remove those rows"
        )

    # Separate files are used whole; only splits without a file are cut from the training rows.
    train_rows = rows["train"]
    held_out = {s: getattr(data, f"{s}_fraction") for s in ("validation", "test") if s not in tables}
    indices = stratified_split(train_rows.labels, held_out, seed)
    parts = {split: (train_rows, indices[split]) for split in indices}
    parts.update({split: (rows[split], list(range(len(rows[split].texts)))) for split in rows if split != "train"})
    split_labels = {s: [parts[s][0].labels[i] for i in parts[s][1]] for s in _SPLITS}
    split_texts = {s: [parts[s][0].texts[i] for i in parts[s][1]] for s in _SPLITS}

    all_texts = [t for s in _SPLITS for t in split_texts[s]]
    lengths, unit = _lengths(all_texts, tokenizer)
    summary = _summary(tables, rows, names, split_texts, split_labels, text_column, label_column)
    summary.update(
        length_tokens=length_stats(lengths, unit),
        truncated={"count": sum(n > max_length for n in lengths), "max_length": max_length, "unit": "tokens"},
        seed=seed,
    )
    file_notices = [notice for table in tables.values() for notice in table.notices]
    summary["language"] = language_summary(all_texts, tokenizer)
    summary["notices"] = file_notices + _summary_notices(summary, split_labels)
    per_split = {s: [masked["train" if s in indices else s][i] for i in parts[s][1]] for s in _SPLITS}
    record_masking(summary, data.mask_personal_data, per_split)
    return ClassificationData(
        train=_dataset(*parts["train"], names),
        validation=_dataset(*parts["validation"], names),
        test=_dataset(*parts["test"], names),
        labels=names,
        summary=summary,
    )


def _read_tables(data: DataSpec, limit: int) -> tuple[dict[str, Table], str, str]:
    """The data's files as tables, and the text and label columns (given, or guessed from the training file)."""
    tables = {"train": read_table(data.train, format=data.format, max_bytes=limit, encoding=data.encoding)}
    text_column, label_column = guess_columns(
        tables["train"].frame, text_column=data.text_column, label_column=data.label_column
    )
    for split in ("validation", "test"):
        path = getattr(data, split)
        if path:
            table = read_table(path, format=data.format, max_bytes=limit, encoding=data.encoding)
            columns = [str(c) for c in table.frame.columns]
            for kind, name in (("text", text_column), ("label", label_column)):
                if name not in columns:
                    raise DataError(f"{split} file {table.path.name}: {missing_column(kind, name, columns)}")
            tables[split] = table
    return tables, text_column, label_column


def _summary(
    tables: dict[str, Table],
    rows: dict[str, _Rows],
    names: list[str],
    split_texts: dict[str, list[str]],
    split_labels: dict[str, list[str]],
    text_column: str,
    label_column: str,
) -> dict:
    """Files, columns, labels, splits, dropped rows and duplicates (lengths are added by the caller)."""
    all_texts = [t for s in _SPLITS for t in split_texts[s]]
    all_labels = [label for s in _SPLITS for label in split_labels[s]]
    return {
        "files": [
            {
                "split": split,
                "path": str(table.path),
                "format": table.format,
                "encoding": table.encoding,
                "rows_read": rows[split].read,
                "rows_kept": len(rows[split].texts),
            }
            for split, table in tables.items()
        ],
        "text_column": text_column,
        "label_column": label_column,
        "labels": names,
        "rows": len(all_texts),
        "rows_per_label": _per_label(all_labels, names),
        "splits": {
            s: {
                "rows": len(split_texts[s]),
                "rows_per_label": _per_label(split_labels[s], names),
                "source": "file" if s in tables else "split from the training file",
            }
            for s in _SPLITS
        },
        "dropped": {
            "blank_text": sum(r.blank_text for r in rows.values()),
            "missing_label": sum(r.missing_label for r in rows.values()),
        },
        "duplicates": _duplicates(split_texts, split_labels),
    }


def inspect_data(data: DataSpec, *, tokenizer: Any = None, max_length: int = 128, seed: int = 42) -> dict:
    """The validation summary shown before training: counts, lengths, duplicates, splits and notices."""
    return load_classification_data(data, tokenizer=tokenizer, max_length=max_length, seed=seed).summary


@dataclass
class LabeledFile:
    """One labeled file, cleaned but not split: what `evaluate` scores a finished model on."""

    texts: list[str]
    labels: list[str]
    summary: dict


def load_labeled_file(
    path: str,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    format: str | None = None,
    tokenizer: Any = None,
    max_length: int = 128,
    max_bytes: int | None = None,
) -> LabeledFile:
    """Read one labeled file with the same mapping and cleaning rules as training; labels stay strings."""
    table = read_table(path, format=format, max_bytes=max_upload_bytes() if max_bytes is None else max_bytes)
    text_column, label_column = guess_columns(table.frame, text_column=text_column, label_column=label_column)
    rows = _clean(table, text_column, label_column)
    if not rows.texts:
        raise DataError(
            f"no usable rows in {table.path.name}: of {rows.read} rows, {rows.blank_text} have blank text in "
            f"'{text_column}' and {rows.missing_label} have no label in '{label_column}'; check the column mapping"
        )
    lengths, unit = _lengths(rows.texts, tokenizer)
    names = sorted(set(rows.labels))
    summary = {
        "files": [
            {
                "split": "test",
                "path": str(table.path),
                "format": table.format,
                "encoding": table.encoding,
                "rows_read": rows.read,
                "rows_kept": len(rows.texts),
            }
        ],
        "text_column": text_column,
        "label_column": label_column,
        "labels": names,
        "rows": len(rows.texts),
        "rows_per_label": _per_label(rows.labels, names),
        "length_tokens": length_stats(lengths, unit),
        "truncated": {"count": sum(n > max_length for n in lengths), "max_length": max_length, "unit": "tokens"},
        "dropped": {"blank_text": rows.blank_text, "missing_label": rows.missing_label},
        "notices": list(table.notices),
    }
    return LabeledFile(texts=rows.texts, labels=rows.labels, summary=summary)


def _duplicates(texts: dict[str, list[str]], labels: dict[str, list[str]]) -> dict[str, int]:
    pairs = [(t.strip(), label) for s in _SPLITS for t, label in zip(texts[s], labels[s], strict=True)]
    labels_of: dict[str, set[str]] = {}
    for text, label in pairs:
        labels_of.setdefault(text, set()).add(label)
    train_texts = {t.strip() for t in texts["train"]}
    return {
        "exact": len(pairs) - len(set(pairs)),
        "conflicting_labels": sum(len(found) > 1 for found in labels_of.values()),
        "across_splits": sum(t.strip() in train_texts for s in ("validation", "test") for t in texts[s]),
    }


def _summary_notices(summary: dict, split_labels: dict[str, list[str]]) -> list[str]:
    """Plain-language warnings about what the counts mean for training and for the scores."""
    notices = []
    text_column, label_column = summary["text_column"], summary["label_column"]
    dropped, dup, truncated = summary["dropped"], summary["duplicates"], summary["truncated"]
    if dropped["blank_text"]:
        notices.append(f"dropped {dropped['blank_text']} row(s) with blank text in column '{text_column}'")
    if dropped["missing_label"]:
        notices.append(
            f"dropped {dropped['missing_label']} row(s) with no label in column '{label_column}' (empty, or a "
            "missing-value marker such as NaN, null, None or N/A)"
        )
    if dup["exact"]:
        notices.append(f"{dup['exact']} row(s) repeat an earlier row exactly (same text and label); they are kept")
    if dup["conflicting_labels"]:
        notices.append(
            f"{dup['conflicting_labels']} text(s) appear with different labels; a model cannot get both right, "
            "so check and fix them"
        )
    if dup["across_splits"]:
        notices.append(
            f"{dup['across_splits']} validation/test row(s) have a text that is also in the training split; "
            "scores on them will look better than on new data"
        )
    counts = {label: n for label, n in summary["rows_per_label"].items() if n}
    big, small = max(counts, key=counts.__getitem__), min(counts, key=counts.__getitem__)
    if counts[big] > IMBALANCE_RATIO * counts[small]:
        notices.append(
            f"labels are imbalanced: '{big}' has {counts[big]} rows but '{small}' only {counts[small]} "
            f"({counts[big] / counts[small]:.0f}x); accuracy will flatter the model, so read per-label F1, "
            "and add examples of rare labels if you can"
        )
    for split in ("validation", "test"):
        missing = [label for label in summary["labels"] if label not in set(split_labels[split])]
        if missing:
            notices.append(f"the {split} file has no rows of label(s) {missing[:10]}; their scores cannot be measured")
    if truncated["count"]:
        share = truncated["count"] / summary["rows"]
        notices.append(
            f"{truncated['count']} text(s) ({share:.0%}) are longer than max_length={truncated['max_length']} "
            f"{truncated['unit']} and will be truncated"
        )
    if summary["length_tokens"]["unit"] == ESTIMATED_TOKENS:
        notices.append(ESTIMATE_NOTICE)
    return notices
