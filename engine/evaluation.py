"""Evaluate a finished classifier on a new labeled file and write the same report as training does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.data import load_classification_data, load_labeled_file
from engine.errors import DataError
from engine.ner_data import load_tagged_file
from engine.ner_report import build_token_classification_report, render_ner_markdown
from engine.predict import Predictor
from engine.report import build_classification_report, tfidf_baseline, write_report
from engine.spec import JobSpec


def evaluate(
    model_dir: str | Path,
    data_file: str | Path,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    format: str | None = None,
    output: str | Path | None = None,
    predictor: Predictor | None = None,
) -> dict[str, Any]:
    """Score the model in `model_dir` on a labeled file; write `output` (.json, plus .md beside it) when given.

    For a token-classification model `text_column`/`label_column` name the tokens and tags fields (JSON/JSONL),
    or `label_column` the CoNLL tag column number.
    """
    predictor = predictor or Predictor(model_dir)
    if predictor.task == "token-classification":
        return _evaluate_tagger(predictor, Path(model_dir), str(data_file), text_column, label_column, format, output)
    if predictor.task != "text-classification":
        raise ValueError(f"{model_dir} is a {predictor.task} model; evaluate scores classifiers and taggers")
    labeled = load_labeled_file(
        str(data_file),
        text_column=text_column,
        label_column=label_column,
        format=format,
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
    probs = predictor.predict_proba(labeled.texts)
    y_true = [label_ids[label] for label in labeled.labels]
    spec = _training_spec(Path(model_dir))
    report = build_classification_report(
        task="text-classification",
        base_model=spec.base_model if spec else str(model_dir),
        labels=predictor.labels,
        test_texts=labeled.texts,
        y_true=y_true,
        probs=probs,
        baseline=_baseline(spec, labeled.texts, y_true, predictor.labels),
        data_summary=labeled.summary,
        train_info=None,
    )
    report["model_dir"] = str(Path(model_dir).resolve())
    if output is not None:
        output = Path(output)
        write_report(report, output.parent, name=output.stem)
    return report


def _evaluate_tagger(
    predictor: Predictor,
    model_dir: Path,
    data_file: str,
    tokens_column: str | None,
    tags_column: str | None,
    format: str | None,
    output: str | Path | None,
) -> dict[str, Any]:
    tokens, tags, summary = load_tagged_file(
        data_file, format=format, tokens_column=tokens_column, tags_column=tags_column
    )
    types = sorted({label[2:] for label in predictor.labels if label != "O"})
    unknown = sorted({t[2:] for sentence in tags for t in sentence if t != "O"} - set(types))
    if unknown:
        raise DataError(
            f"entity types {unknown[:10]} in {Path(data_file).name} are not among the model's types {types}; "
            "remove or rename those tags"
        )
    spec = _training_spec(model_dir)
    report = build_token_classification_report(
        base_model=spec.base_model if spec else str(model_dir),
        labels=predictor.labels,
        entity_types=types,
        test_tokens=tokens,
        y_true_tags=tags,
        y_pred_tags=predictor.tag_words(tokens),
        baseline=None,
        data_summary=summary,
        train_info=None,
    )
    report["model_dir"] = str(model_dir.resolve())
    if output is not None:
        output = Path(output)
        write_report(report, output.parent, name=output.stem, renderer=render_ner_markdown)
    return report


def _training_spec(model_dir: Path) -> JobSpec | None:
    # A model trained by the playground has its spec.json one level up; other models have none.
    path = model_dir / ".." / "spec.json"
    if not path.is_file():
        return None
    try:
        return JobSpec.load(path)
    except ValueError:
        return None


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


__all__ = ["evaluate"]
