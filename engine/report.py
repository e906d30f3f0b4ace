"""The evaluation report: a TF-IDF baseline, the most confident errors, and report.json / report.md on disk."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline

from engine.metrics import classification_metrics

BASELINE_NAME = "TF-IDF + logistic regression"
# A class whose F1 sits this far under the macro average is flagged in report.md.
LOW_F1_MARGIN = 0.10
ERROR_TEXT_CHARS = 200

_HEADLINE_ROWS = (
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro F1"),
    ("micro_f1", "Micro F1"),
    ("weighted_f1", "Weighted F1"),
    ("macro_precision", "Macro precision"),
    ("macro_recall", "Macro recall"),
)
_SPLIT_NAMES = ("train", "validation", "test")
_COLUMN_KEYS = (("text", "text_column"), ("labels", "label_column"))
_LENGTH_PARTS = (("p50", "median"), ("p90", "p90"), ("p95", "p95"), ("p99", "p99"), ("max", "max"))
_DROPPED_PHRASES = {"blank_text": "{n} with blank text", "missing_label": "{n} with no label"}
_DUPLICATE_PHRASES = {
    "exact": "{n} exact repeat(s) of an earlier row",
    "conflicting_labels": "{n} text(s) with conflicting labels",
    "across_splits": "{n} validation/test text(s) also in the training split",
}
_TRAIN_ROWS = (
    ("epochs", "Epochs"),
    ("steps", "Steps"),
    ("train_samples", "Training samples"),
    ("wall_seconds", "Wall time"),
    ("samples_per_second", "Samples per second"),
    ("precision", "Precision"),
    ("device", "Device"),
    ("threads", "CPU threads"),
    ("best_epoch", "Best epoch"),
    ("best_validation_macro_f1", "Best validation macro-F1"),
    ("final_train_loss", "Final training loss"),
)


def tfidf_baseline(
    train_texts: list[str],
    train_labels: list[int],
    test_texts: list[str],
    test_labels: list[int],
    labels: list[str],
    *,
    seed: int = 42,
) -> dict[str, Any]:
    """Train and score a TF-IDF + logistic regression baseline that the fine-tuned model has to beat."""
    if len(train_texts) != len(train_labels) or len(test_texts) != len(test_labels):
        raise ValueError(
            f"texts and labels must pair up: train has {len(train_texts)} texts and {len(train_labels)} labels, "
            f"test has {len(test_texts)} texts and {len(test_labels)} labels"
        )
    if len(set(train_labels)) < 2:
        raise ValueError(
            f"the baseline needs at least two classes in the training split; got {sorted(set(train_labels))}"
        )
    if not test_texts:
        raise ValueError("the baseline needs at least one test text; the test split is empty")

    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
            # Character n-grams inside word boundaries carry the signal for languages written without spaces
            # (Chinese, Japanese) and for misspellings, where word n-grams see one giant token.
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1)),
        ]
    )
    # Balanced class weights: the report's headline is macro-F1, and on skewed uploads an unweighted model
    # mostly predicts the majority class; weighting gives the fine-tuned model an honest, not a weak, rival.
    classifier = LogisticRegression(max_iter=1000, class_weight="balanced", random_state=seed)
    model = make_pipeline(features, classifier)
    try:
        model.fit(train_texts, train_labels)
    except ValueError as exc:
        raise ValueError(f"the TF-IDF baseline could not be trained ({exc}); are the training texts empty?") from exc
    predictions = model.predict(test_texts)

    scores = classification_metrics(test_labels, predictions.tolist(), labels)
    return {
        "name": BASELINE_NAME,
        "accuracy": scores["metrics"]["accuracy"],
        "macro_f1": scores["metrics"]["macro_f1"],
        "per_class_f1": {name: row["f1"] for name, row in scores["per_class"].items()},
    }


def _check_probs(probs: np.ndarray, n_rows: int, labels: list[str]) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape != (n_rows, len(labels)):
        raise ValueError(f"probs must have shape ({n_rows}, {len(labels)}) = (texts, labels); got {probs.shape}")
    return probs


def confident_errors(
    texts: list[str], y_true: Sequence[int], probs: np.ndarray, labels: list[str], limit: int = 20
) -> list[dict[str, Any]]:
    """The wrong predictions the model was surest of, most confident first, at most `limit` of them."""
    if len(texts) != len(y_true):
        raise ValueError(f"texts has {len(texts)} items but y_true has {len(y_true)}; they must pair one to one")
    probs = _check_probs(probs, len(texts), labels)
    true = np.asarray(y_true, dtype=np.int64)
    if true.size and (true.min() < 0 or true.max() >= len(labels)):
        raise ValueError(f"y_true holds class ids outside 0..{len(labels) - 1} for labels {labels}")
    predicted = probs.argmax(axis=1)
    confidence = probs[np.arange(len(texts)), predicted]
    wrong = np.flatnonzero(predicted != true)
    # A stable sort keeps ties in input order, so the same predictions always give the same list.
    ordered = wrong[np.argsort(-confidence[wrong], kind="stable")][: max(limit, 0)]
    return [
        {
            "text": texts[i],
            "label": labels[true[i]],
            "predicted": labels[predicted[i]],
            "confidence": round(float(confidence[i]), 4),
        }
        for i in ordered
    ]


def build_classification_report(
    *,
    task: str,
    base_model: str,
    labels: list[str],
    test_texts: list[str],
    y_true: Sequence[int],
    probs: np.ndarray,
    baseline: dict | None,
    data_summary: dict,
    train_info: dict | None,
) -> dict[str, Any]:
    """Assemble the full report of a classification model scored on the test split."""
    if len(test_texts) != len(y_true):
        raise ValueError(f"test_texts has {len(test_texts)} items but y_true has {len(y_true)}")
    probs = _check_probs(probs, len(test_texts), labels)
    scores = classification_metrics(y_true, probs.argmax(axis=1).tolist(), labels)
    return {
        "task": task,
        "base_model": base_model,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "split": "test",
        "n_test": len(test_texts),
        "labels": list(labels),
        "metrics": scores["metrics"],
        "per_class": scores["per_class"],
        "confusion_matrix": scores["confusion_matrix"],
        "baseline": baseline,
        "errors": confident_errors(test_texts, y_true, probs, labels),
        "data": data_summary,
        "train": train_info,
    }


def _cell(value: Any) -> str:
    # Table cells must stay on one line and must not contain a bare pipe, or the markdown table falls apart.
    text = str(value).replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    return text.replace("|", "\\|")


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):.3f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _comparison_line(report: dict) -> str:
    baseline = report.get("baseline")
    if not baseline or baseline.get("macro_f1") is None:
        return "No baseline was computed for this report."
    ours, theirs = report["metrics"]["macro_f1"], baseline["macro_f1"]
    name = baseline.get("name", BASELINE_NAME)
    diff = ours - theirs
    scores = f"({ours:.3f} vs {theirs:.3f})"
    if round(diff, 3) > 0:
        return f"**{diff:+.3f} macro-F1** over {name} {scores}."
    if round(diff, 3) == 0:
        return f"**Same macro-F1** as {name} {scores}: fine-tuning bought nothing over the cheap baseline."
    return (
        f"**Warning: the fine-tuned model is worse than {name}** by {-diff:.3f} macro-F1 {scores}. "
        "Try more epochs, a different learning rate or base model, or more training data."
    )


def per_class_section(
    report: dict, *, title: str = "Per class", column: str = "Label", noun: str = "labels"
) -> list[str]:
    """The per-class (or per-type) table; classes well below the macro F1 are flagged."""
    macro_f1 = report["metrics"]["macro_f1"]
    baseline_f1 = (report.get("baseline") or {}).get("per_class_f1")
    header = [column, "Precision", "Recall", "F1", "Support", *(["Baseline F1"] if baseline_f1 else []), "Note"]
    rows, flagged = [], []
    for name, row in report["per_class"].items():
        # A class absent from the test split has F1 0 by convention; that says nothing about the model.
        low = row["support"] > 0 and row["f1"] < macro_f1 - LOW_F1_MARGIN
        cells = [_cell(name), *(_num(row[key]) for key in ("precision", "recall", "f1", "support"))]
        if baseline_f1:
            cells.append(_num(baseline_f1.get(name)))
        note = "**well below average**" if low else ("no test examples" if not row["support"] else "")
        rows.append([*cells, note])
        flagged += [name] if low else []
    lines = [f"## {title}", "", *_table(header, rows), ""]
    if flagged:
        lines += [
            f"F1 at least {LOW_F1_MARGIN:.2f} below the macro average ({macro_f1:.3f}): "
            f"{', '.join(_cell(name) for name in flagged)}. More or cleaner examples of these {noun} usually help.",
            "",
        ]
    return lines


def confusion_section(
    report: dict, *, explanation: str = "Rows are the true label, columns the predicted label.", corner: str = "true"
) -> list[str]:
    """The confusion matrix as a markdown table."""
    matrix = report["confusion_matrix"]
    names = [_cell(name) for name in matrix["labels"]]
    rows = [[f"**{names[i]}**", *(str(count) for count in counts)] for i, counts in enumerate(matrix["matrix"])]
    return ["## Confusion matrix", "", explanation, "", *_table([f"{corner} \\ predicted", *names], rows), ""]


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return 0
    return int(value)


def _counts_sentence(title: str, counts: Any, phrases: dict[str, str]) -> str:
    """`Title: 2 with blank text, 1 with no label.` from the non-zero counts, or `Title: none.`"""
    if not isinstance(counts, dict):  # a bare total from an older summary
        return f"{title}: {_count(counts) or 'none'}."
    parts = [phrase.format(n=_count(counts.get(key))) for key, phrase in phrases.items() if _count(counts.get(key))]
    return f"{title}: {', '.join(parts) if parts else 'none'}."


def _truncated_sentence(truncated: Any, rows: Any) -> str:
    if not isinstance(truncated, dict):
        return f"Truncated: {_count(truncated) or 'none'}."
    limit = f"{truncated.get('max_length', '?')} {truncated.get('unit', 'tokens')}"
    count = _count(truncated.get("count"))
    if not count:
        return f"Truncated: none (every text fits in max_length {limit})."
    which = f"{count} of {rows} text(s) ({count / rows:.0%})" if _count(rows) else f"{count} text(s)"
    return f"Truncated: {which} are longer than max_length {limit} and lose their end."


def _files_table(files: Any) -> list[str]:
    # The file name, not the full path: upload folders are long and say nothing to the reader (report.json has it).
    rows = [
        [_cell(f.get("split", "")), _cell(Path(str(f.get("path", ""))).name)]
        + [_cell(f.get(key, "")) for key in ("format", "encoding")]
        + [_num(f.get(key)) for key in ("rows_read", "rows_kept")]
        for f in (files if isinstance(files, list) else [])
        if isinstance(f, dict)
    ]
    header = ["Split", "File", "Format", "Encoding", "Rows read", "Rows kept"]
    return [*_table(header, rows), ""] if rows else []


def _labels_table(data: dict) -> list[str]:
    totals = data.get("rows_per_label") or {}
    splits = data.get("splits") or {}
    per_split = {s: (splits.get(s) or {}).get("rows_per_label") or {} for s in _SPLIT_NAMES}
    names = list(dict.fromkeys([*(data.get("labels") or []), *totals, *(n for c in per_split.values() for n in c)]))
    if not names:
        return []
    total = _num(data.get("rows", sum(totals.values())))
    if not splits:  # an evaluate-only summary covers one file, not three splits
        rows = [[_cell(name), _num(totals.get(name, 0))] for name in names]
        return [*_table(["Label", "Rows"], [*rows, ["**Total**", total]]), ""]
    rows = [
        [_cell(name), *(_num(per_split[s].get(name, 0)) for s in _SPLIT_NAMES)]
        + [_num(totals.get(name, sum(per_split[s].get(name, 0) for s in _SPLIT_NAMES)))]
        for name in names
    ]
    split_totals = [_num((splits.get(s) or {}).get("rows", sum(per_split[s].values()))) for s in _SPLIT_NAMES]
    lines = [
        *_table(
            ["Label", *(split.capitalize() for split in _SPLIT_NAMES), "Total"],
            [*rows, ["**Total**", *split_totals, total]],
        ),
        "",
    ]
    # Say where held-out splits came from; the files table already lists the splits read from their own files.
    derived: dict[str, list[str]] = {}
    for split in _SPLIT_NAMES:
        source = (splits.get(split) or {}).get("source")
        if source and source != "file":
            derived.setdefault(str(source), []).append(split)
    seed = f" (seed {data['seed']})" if data.get("seed") is not None else ""
    for source, split_names in derived.items():
        lines += [f"{' and '.join(split_names).capitalize()}: {_cell(source)}{seed}.", ""]
    return lines


def _lengths_line(lengths: Any) -> list[str]:
    if not isinstance(lengths, dict):
        return []
    parts = [f"{title} {lengths[key]}" for key, title in _LENGTH_PARTS if lengths.get(key) is not None]
    return [f"Length in {lengths.get('unit', 'tokens')}: {', '.join(parts)}.", ""] if parts else []


def _data_section(data: dict | None) -> list[str]:
    lines = ["## Data", ""]
    if not data:
        return [*lines, "No data summary was recorded.", ""]
    lines += _files_table(data.get("files"))
    columns = [f"{kind} from '{data[key]}'" for kind, key in _COLUMN_KEYS if data.get(key)]
    if columns:
        lines += [_cell(f"Columns: {', '.join(columns)}."), ""]
    lines += _labels_table(data)
    lines += _lengths_line(data.get("length_tokens"))
    sentences = [
        _counts_sentence("Dropped rows", data.get("dropped"), _DROPPED_PHRASES) if "dropped" in data else None,
        _counts_sentence("Duplicates", data.get("duplicates"), _DUPLICATE_PHRASES) if "duplicates" in data else None,
        _truncated_sentence(data["truncated"], data.get("rows")) if "truncated" in data else None,
    ]
    lines += [f"- {_cell(sentence)}" for sentence in sentences if sentence]
    notices = data.get("notices") or []
    if isinstance(notices, str):
        notices = [notices]
    if notices:
        lines += ["", "Notices:", "", *(f"- {_cell(notice)}" for notice in notices)]
    return [*lines, ""]


def _epoch(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return _num(value)
    return f"{round(float(value), 2):g}"  # 2.0 -> "2", 0.3333 -> "0.33"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _train_value(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if key in ("epochs", "best_epoch"):
        return _epoch(value)
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return _cell(value)
    if key == "wall_seconds":
        return _duration(float(value))
    if key == "samples_per_second":
        return f"{value:.1f}"
    if key == "best_validation_macro_f1":
        return _num(value)  # three decimals, like every other F1 in the report
    return f"{value:.4g}" if isinstance(value, float | np.floating) else str(int(value))


def _validation_table(history: Any, best_epoch: Any) -> list[str]:
    evals = [h for h in (history if isinstance(history, list) else []) if isinstance(h, dict) and "eval_macro_f1" in h]
    if not evals:
        return []
    rows = []
    for entry in evals:
        epoch = _epoch(entry.get("epoch"))
        if best_epoch is not None and entry.get("epoch") == best_epoch:
            epoch += " (best)"
        rows.append([epoch, *(_num(entry.get(key)) for key in ("eval_loss", "eval_accuracy", "eval_macro_f1"))])
    header = ["Epoch", "Validation loss", "Accuracy", "Macro-F1"]
    return ["Validation scores by epoch:", "", *_table(header, rows), ""]


def _train_section(train: dict | None) -> list[str]:
    lines = ["## Training", ""]
    if not train:
        return [*lines, "Evaluate-only report: no training happened in this run.", ""]
    rows = [[title, _train_value(key, train[key])] for key, title in _TRAIN_ROWS if key in train]
    known = {key for key, _ in _TRAIN_ROWS} | {"history"}
    # Scalars added to the training info later still show up; nested values (the raw history) never do.
    rows += [
        [_cell(key.replace("_", " ").capitalize()), _train_value(key, value)]
        for key, value in train.items()
        if key not in known and not isinstance(value, dict | list | tuple)
    ]
    if rows:
        lines += [*_table(["Setting", "Value"], rows), ""]
    return [*lines, *_validation_table(train.get("history"), train.get("best_epoch"))]


def _errors_section(errors: list[dict]) -> list[str]:
    lines = ["## Most confident errors", ""]
    if not errors:
        return [*lines, "No wrong predictions on the test split.", ""]
    rows = []
    for i, error in enumerate(errors, start=1):
        text = error["text"]
        if len(text) > ERROR_TEXT_CHARS:
            text = text[:ERROR_TEXT_CHARS].rstrip() + "…"
        rows.append([str(i), _cell(text), _cell(error["label"]), _cell(error["predicted"]), _num(error["confidence"])])
    return [*lines, *_table(["#", "Text", "True label", "Predicted", "Confidence"], rows), ""]


def render_markdown(report: dict) -> str:
    """Render a report dict as a human-readable report.md."""
    metrics = report["metrics"]
    lines = [f"# {report['task']} report: {report['base_model']}", ""]
    context = [f"{key.replace('_', ' ')}: {report[key]}" for key in ("split", "n_test", "created_at") if key in report]
    if context:
        lines += [" · ".join(context), ""]
    headline_rows = [[title, _num(metrics.get(key))] for key, title in _HEADLINE_ROWS if key in metrics]
    lines += ["## Headline metrics", "", *_table(["Metric", "Value"], headline_rows), ""]
    lines += ["## Fine-tuned vs baseline", "", _comparison_line(report), ""]
    lines += per_class_section(report)
    lines += confusion_section(report)
    lines += _data_section(report.get("data"))
    lines += _train_section(report.get("train"))
    lines += _errors_section(report.get("errors") or [])
    return "\n".join(lines).rstrip() + "\n"


def _json_default(value: Any) -> Any:
    # Summaries assembled elsewhere may still hold numpy numbers; JSON has no type for them.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"report value of type {type(value).__name__} cannot be written as JSON: {value!r}")


def _write_atomically(path: Path, text: str) -> None:
    # Write beside the target and rename, so a reader never sees a half-written report.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_report(
    report: dict, out_dir: str | Path, *, name: str = "report", renderer: Callable[[dict], str] | None = None
) -> tuple[Path, Path]:
    """Write `<name>.json` and `<name>.md` into `out_dir` atomically and return their paths."""
    if not name or Path(name).name != name or name in {".", ".."}:
        raise ValueError(f"report name {name!r} must be a plain file name without folders")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create report folder {out}: {exc.strerror}; choose another output path") from exc
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    # Serialise both before writing either, so a bad value cannot leave a JSON without its markdown.
    json_text = json.dumps(report, indent=2, ensure_ascii=False, default=_json_default) + "\n"
    md_text = (renderer or render_markdown)(report)
    _write_atomically(json_path, json_text)
    _write_atomically(md_path, md_text)
    return json_path, md_path
