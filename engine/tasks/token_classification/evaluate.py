"""Score a finished tagger on a new tagged file: entity-level precision, recall and F1, and the kinds of error."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import DataError
from engine.tasks.token_classification.data import load_tagged_file
from engine.tasks.token_classification.report import build_token_classification_report

if TYPE_CHECKING:
    from engine.predict import Predictor
    from engine.spec import JobSpec


def evaluate_tagger(predictor: Predictor, data_file: str, columns: dict[str, Any], spec: JobSpec | None) -> dict:
    """The entity report of `predictor` on a tagged file (text_column: the tokens field, label_column: the tags)."""
    tokens, tags, summary = load_tagged_file(
        data_file,
        format=columns.get("format"),
        tokens_column=columns.get("text_column"),
        tags_column=columns.get("label_column"),
    )
    types = sorted({label[2:] for label in predictor.labels if label != "O"})
    unknown = sorted({t[2:] for sentence in tags for t in sentence if t != "O"} - set(types))
    if unknown:
        raise DataError(
            f"entity types {unknown[:10]} in {Path(data_file).name} are not among the model's types {types}; "
            "remove or rename those tags"
        )
    return build_token_classification_report(
        base_model=spec.base_model if spec else str(predictor.model_dir),
        labels=predictor.labels,
        entity_types=types,
        test_tokens=tokens,
        y_true_tags=tags,
        y_pred_tags=predictor.tag_words(tokens),
        baseline=None,
        data_summary=summary,
        train_info=None,
    )
