"""Entity-level metrics for token classification: seqeval with strict IOB2 span matching, as plain JSON types.

The scores come from the project's "entities" evaluate module (`engine.metrics.metric_module_path("entities")`);
the span confusion matrix and the error kinds, which seqeval does not compute, are read from seqeval's spans here.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from seqeval.scheme import IOB2, Entities

from engine.metrics import compute_metric
from engine.tasks.token_classification.data import normalize_tags

if TYPE_CHECKING:
    from transformers import EvalPrediction

BASELINE_NAME = "most frequent tag per word"
ERROR_KINDS = ("missed", "spurious", "wrong_type", "wrong_boundary")
HEADLINE_METRICS = ("micro_f1", "macro_f1", "weighted_f1", "micro_precision", "micro_recall", "token_accuracy")
IGNORE_INDEX = -100
ENTITIES_MODULE = "entities"

Span = tuple[str, int, int]  # (type, start token, end token exclusive)


def _check(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} sentences but y_pred has {len(y_pred)}; they must pair up")
    for i, (gold, pred) in enumerate(zip(y_true, y_pred, strict=True)):
        if len(gold) != len(pred):
            raise ValueError(f"sentence {i}: {len(gold)} gold tags but {len(pred)} predicted; they must pair up")
    for name, sequences in (("y_true", y_true), ("y_pred", y_pred)):
        bad = next((t for s in sequences for t in s if t != "O" and not (t[:2] in ("B-", "I-") and t[2:])), None)
        if bad is not None:
            raise ValueError(
                f"{name} holds tag {bad!r}; scoring needs IOB2 tags ('O', 'B-TYPE', 'I-TYPE'): convert them with "
                "engine.tasks.token_classification.data.normalize_tags"
            )


def _spans(sequences: Sequence[Sequence[str]]) -> tuple[Entities, list[list[Span]]]:
    # seqeval's own strict reading, so the confusion matrix and error kinds agree with its scores:
    # an I-X that does not continue an X entity is no entity at all.
    entities = Entities([list(s) for s in sequences], IOB2)
    return entities, [[(e.tag, e.start, e.end) for e in sentence] for sentence in entities.entities]


def _overlaps(span: Span, others: list[Span]) -> bool:
    return any(start < span[2] and span[1] < end for _, start, end in others)


def _classify(gold: list[Span], pred: list[Span]) -> list[tuple[str, Span | None, Span | None]]:
    """(kind, gold span, predicted span) per error in one sentence; kind "correct" for exact matches.

    Every gold entity gets one outcome (correct, wrong_type, wrong_boundary or missed); predicted entities that
    overlap no gold entity are spurious. A predicted span that only overlaps a gold one is part of that
    wrong_boundary error, not a second error.
    """
    by_span = {(start, end): kind for kind, start, end in pred}
    gold_spans = {(start, end) for _, start, end in gold}
    out: list[tuple[str, Span | None, Span | None]] = []
    for span in gold:
        predicted = by_span.get((span[1], span[2]))
        if predicted is not None:
            out.append(("correct" if predicted == span[0] else "wrong_type", span, (predicted, span[1], span[2])))
        elif _overlaps(span, pred):
            near = next(p for p in pred if p[1] < span[2] and span[1] < p[2])
            out.append(("wrong_boundary", span, near))
        else:
            out.append(("missed", span, None))
    out += [("spurious", None, p) for p in pred if (p[1], p[2]) not in gold_spans and not _overlaps(p, gold)]
    return out


def entity_metrics(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], *, entity_types: Sequence[str] | None = None
) -> dict[str, Any]:
    """Strict entity-level scores (seqeval, IOB2), per-type scores, a span confusion matrix and error kinds.

    Averages cover the types seqeval sees (in gold or predictions), so they equal seqeval's own numbers; types
    listed in `entity_types` but absent from both are still shown per type, with zeros.
    """
    _check(y_true, y_pred)
    n_tokens = sum(len(s) for s in y_true)
    if n_tokens == 0:
        raise ValueError("cannot compute metrics on an empty split; y_true holds no tags")
    _, gold = _spans(y_true)
    _, pred = _spans(y_pred)
    scores = compute_metric(
        ENTITIES_MODULE,
        predictions=[list(s) for s in y_pred],
        references=[list(s) for s in y_true],
        scheme="IOB2",
    )
    by_type = scores["per_type"]  # the types seqeval sees, sorted
    types = list(dict.fromkeys([*(entity_types or []), *by_type]))
    metrics = {f"{average}_f1": float(scores[f"{average}_f1"]) for average in ("micro", "macro", "weighted")}
    for average in ("micro", "macro"):
        metrics[f"{average}_precision"] = float(scores[f"{average}_precision"])
        metrics[f"{average}_recall"] = float(scores[f"{average}_recall"])
    metrics["token_accuracy"] = float(scores["token_accuracy"])
    metrics["accuracy"] = metrics["token_accuracy"]  # the key classification reports use
    zero = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    per_class = {name: dict(by_type.get(name, zero)) for name in types}

    names = [*types, "O"]
    index = {name: i for i, name in enumerate(names)}
    matrix = np.zeros((len(names), len(names)), dtype=int)
    kinds: Counter = Counter({kind: 0 for kind in ERROR_KINDS})
    for gold_spans, pred_spans in zip(gold, pred, strict=True):
        exact = {(start, end): kind for kind, start, end in pred_spans}
        for kind, start, end in gold_spans:
            matrix[index[kind], index[exact.get((start, end), "O")]] += 1
        gold_at = {(start, end) for _, start, end in gold_spans}
        for kind, start, end in pred_spans:
            if (start, end) not in gold_at:
                matrix[index["O"], index[kind]] += 1
        kinds.update(kind for kind, _, _ in _classify(gold_spans, pred_spans) if kind != "correct")
    return {
        "metrics": metrics,
        "per_class": per_class,
        "confusion_matrix": {"labels": names, "matrix": matrix.tolist()},
        "error_kinds": {kind: int(kinds[kind]) for kind in ERROR_KINDS},
    }


def join_tokens(tokens: Sequence[str]) -> str:
    """Tokens as readable text: no spaces between single CJK characters (Chinese-style data), spaces otherwise."""
    cjk = all(len(t) == 1 and unicodedata.east_asian_width(t) in "WF" for t in tokens if t.strip())
    return "".join(tokens) if tokens and cjk else " ".join(tokens)


def error_examples(
    tokens: Sequence[Sequence[str]],
    y_true: Sequence[Sequence[str]],
    y_pred: Sequence[Sequence[str]],
    *,
    limit_per_kind: int = 5,
) -> list[dict[str, Any]]:
    """Up to `limit_per_kind` examples of each error kind, commonest kind first, in sentence order within a kind."""
    _check(y_true, y_pred)
    if len(tokens) != len(y_true) or any(len(t) != len(g) for t, g in zip(tokens, y_true, strict=True)):
        raise ValueError("tokens and tags must pair up: one tag per token in every sentence")
    _, gold = _spans(y_true)
    _, pred = _spans(y_pred)
    found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in ERROR_KINDS}
    counts: Counter = Counter()
    for i, (gold_spans, pred_spans) in enumerate(zip(gold, pred, strict=True)):
        for kind, gold_span, pred_span in _classify(gold_spans, pred_spans):
            if kind == "correct":
                continue
            counts[kind] += 1
            if len(found[kind]) >= limit_per_kind:
                continue
            shown = gold_span or pred_span or ("", 0, 0)  # every error has a gold or a predicted span
            found[kind].append(
                {
                    "kind": kind,
                    "sentence_index": i,
                    "sentence": join_tokens(tokens[i]),
                    "entity": join_tokens(tokens[i][shown[1] : shown[2]]),
                    "gold": gold_span[0] if gold_span else "O",
                    "predicted": pred_span[0] if pred_span else "O",
                    "predicted_entity": join_tokens(tokens[i][pred_span[1] : pred_span[2]]) if pred_span else None,
                    "start": shown[1],
                    "end": shown[2],
                }
            )
    order = sorted(ERROR_KINDS, key=lambda kind: (-counts[kind], ERROR_KINDS.index(kind)))
    return [example for kind in order for example in found[kind]]


def repair_predictions(tags: Sequence[str]) -> list[str]:
    """Read predicted tags as the playground shows them: an I-X that does not continue an X entity starts one."""
    return normalize_tags(list(tags), scheme="IOB2")[0]


def _flat(scores: dict[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in scores["metrics"].items()}


def trainer_compute_metrics(labels: list[str]) -> Callable[[EvalPrediction], dict[str, float]]:
    """A `compute_metrics` for transformers' Trainer: entity-level scores over label ids, skipping -100 positions."""

    def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
        predictions = eval_pred.predictions
        # Models that also return hidden states or attentions hand the Trainer a tuple; the logits come first.
        if isinstance(predictions, tuple | list):
            predictions = predictions[0]
        predictions = np.asarray(predictions)
        label_ids = np.asarray(eval_pred.label_ids)
        # Logits (batch, seq, labels) or ids already reduced by preprocess_logits_for_metrics (batch, seq).
        pred_ids = predictions.argmax(axis=-1) if predictions.ndim == label_ids.ndim + 1 else predictions
        y_true, y_pred = [], []
        # Predictions and label_ids of one call come from the same batches in the same order, so rows pair up.
        for pred_row, label_row in zip(pred_ids, label_ids, strict=True):
            keep = label_row != IGNORE_INDEX  # later sub-tokens, special tokens and padding
            y_true.append([labels[i] for i in label_row[keep]])
            y_pred.append(repair_predictions([labels[i] for i in pred_row[keep]]))
        return _flat(entity_metrics(y_true, y_pred))

    return compute_metrics


def most_frequent_tag_baseline(
    train_tokens: Sequence[Sequence[str]],
    train_tags: Sequence[Sequence[str]],
    test_tokens: Sequence[Sequence[str]],
    test_tags: Sequence[Sequence[str]],
) -> dict[str, Any]:
    """Tag each test word with its most frequent training tag ("O" if unseen) and score it like the model."""
    by_word: dict[str, Counter] = {}
    for words, tags in zip(train_tokens, train_tags, strict=True):
        for word, tag in zip(words, tags, strict=True):
            by_word.setdefault(word, Counter())[tag] += 1
    # Ties go to "O", then alphabetical order, so the baseline never depends on file order.
    best = {word: min(c, key=lambda tag: (-c[tag], tag != "O", tag)) for word, c in by_word.items()}
    predictions = [repair_predictions([best.get(word, "O") for word in words]) for words in test_tokens]
    types = sorted({tag[2:] for tags in [*train_tags, *test_tags] for tag in tags if tag != "O"})
    scores = entity_metrics(test_tags, predictions, entity_types=types)
    return {
        "name": BASELINE_NAME,
        "micro_f1": scores["metrics"]["micro_f1"],
        "macro_f1": scores["metrics"]["macro_f1"],
        "token_accuracy": scores["metrics"]["token_accuracy"],
        "accuracy": scores["metrics"]["token_accuracy"],
        "per_class_f1": {name: row["f1"] for name, row in scores["per_class"].items()},
    }
