"""Score a finished classifier on a new labeled file, against the TF-IDF baseline refit on its own training split."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import DataError
from engine.tasks.text_classification.data import load_classification_data, load_labeled_file
from engine.tasks.text_classification.report import build_classification_report, tfidf_baseline

if TYPE_CHECKING:
    from engine.predict import Predictor
    from engine.spec import JobSpec


def evaluate_classifier(predictor: Predictor, data_file: str, columns: dict[str, Any], spec: JobSpec | None) -> dict:
    """The classification report of `predictor` on a labeled file (columns: text_column, label_column, format)."""
    labeled = load_labeled_file(
        data_file,
        text_column=columns.get("text_column"),
        label_column=columns.get("label_column"),
        format=columns.get("format"),
        tokenizer=predictor.tokenizer,
        max_length=predictor.max_length,
    )
    unknown = sorted(set(labeled.labels) - set(predictor.labels))
    if unknown:
        raise DataError(
            f"labels {unknown[:10]} in {Path(data_file).name} are not among the model's labels {predictor.labels}; "
            "check the label column, or remove rows with labels the model was not trained on"
        )
    label_ids = {label: i for i, label in enumerate(predictor.labels)}
    y_true = [label_ids[label] for label in labeled.labels]
    return build_classification_report(
        task=predictor.task,
        base_model=spec.base_model if spec else str(predictor.model_dir),
        labels=predictor.labels,
        test_texts=labeled.texts,
        y_true=y_true,
        probs=predictor.predict_proba(labeled.texts),
        baseline=_baseline(spec, labeled.texts, y_true, predictor.labels),
        data_summary=labeled.summary,
        train_info=None,
    )


def _baseline(spec: JobSpec | None, texts: list[str], y_true: list[int], labels: list[str]) -> dict | None:
    """Refit the TF-IDF baseline on the model's own training split, so both are compared on this file."""
    if spec is None:
        return None
    try:
        data = load_classification_data(spec.data, max_length=spec.params.max_length, seed=spec.params.seed)
    except (DataError, OSError):
        return None  # the training file moved or changed: report without a baseline rather than fail
    if data.labels != labels:
        return None
    return tfidf_baseline(
        list(data.train["text"]), list(data.train["label"]), texts, y_true, labels, seed=spec.params.seed
    )
