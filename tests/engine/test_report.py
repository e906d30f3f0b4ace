"""Known-answer tests for the metric math, the TF-IDF baseline and the written report."""

from __future__ import annotations

import json
import re
import warnings
from collections import namedtuple
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.metrics import classification_metrics, softmax, trainer_compute_metrics
from engine.report import (
    build_classification_report,
    confident_errors,
    render_markdown,
    tfidf_baseline,
    write_report,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LABELS = ["cat", "dog", "bird"]
# Worked by hand: confusion rows (true) cat [2, 1, 0], dog [0, 2, 0], bird [1, 0, 0].
Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 1, 1, 1, 0]

EvalPred = namedtuple("EvalPred", ["predictions", "label_ids"])


def one_hot_logits(pred: list[int], n_classes: int, scale: float = 3.0) -> np.ndarray:
    logits = np.zeros((len(pred), n_classes))
    logits[np.arange(len(pred)), pred] = scale
    return logits


def test_classification_metrics_match_hand_computed_values():
    result = classification_metrics(Y_TRUE, Y_PRED, LABELS)
    metrics = result["metrics"]
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["micro_f1"] == pytest.approx(4 / 6)
    assert metrics["macro_precision"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert metrics["macro_recall"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 4 / 5 + 0) / 3)
    assert metrics["weighted_f1"] == pytest.approx((3 * 2 / 3 + 2 * 4 / 5 + 1 * 0) / 6)

    per_class = result["per_class"]
    assert per_class["cat"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert per_class["dog"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert per_class["bird"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}

    assert result["confusion_matrix"] == {"labels": LABELS, "matrix": [[2, 1, 0], [0, 2, 0], [1, 0, 0]]}


def test_classification_metrics_are_plain_json_types():
    result = classification_metrics(np.array(Y_TRUE), np.array(Y_PRED), LABELS)
    assert json.loads(json.dumps(result)) == result
    assert type(result["per_class"]["cat"]["support"]) is int
    assert type(result["metrics"]["accuracy"]) is float
    assert all(type(cell) is int for row in result["confusion_matrix"]["matrix"] for cell in row)


def test_class_absent_from_split_gets_zeros_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = classification_metrics([0, 1, 0, 1], [0, 1, 1, 1], ["a", "b", "c"])
    assert result["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert result["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert result["confusion_matrix"]["matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    # The absent class still counts in the macro average, which is why macro F1 sits below accuracy here.
    assert result["metrics"]["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)
    assert result["metrics"]["accuracy"] == pytest.approx(0.75)


def test_classification_metrics_reject_mismatched_or_unknown_ids():
    with pytest.raises(ValueError, match="y_true has 3 items but y_pred has 2"):
        classification_metrics([0, 1, 0], [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match=r"y_pred holds class ids \[2\] outside 0\.\.1"):
        classification_metrics([0, 1], [0, 2], ["a", "b"])


def test_trainer_compute_metrics_pairs_predictions_with_label_ids():
    compute = trainer_compute_metrics(LABELS)
    out = compute(EvalPred(one_hot_logits(Y_PRED, 3), np.array(Y_TRUE)))
    assert set(out) == {"accuracy", "macro_f1", "micro_f1", "weighted_f1", "macro_precision", "macro_recall"}
    assert all(type(value) is float for value in out.values())
    assert out == pytest.approx(classification_metrics(Y_TRUE, Y_PRED, LABELS)["metrics"])
    assert out["macro_f1"] == pytest.approx(22 / 45)


def test_trainer_compute_metrics_takes_logits_from_a_tuple():
    compute = trainer_compute_metrics(LABELS)
    hidden = np.ones((6, 4, 8))
    out = compute(EvalPred((one_hot_logits(Y_TRUE, 3), hidden), np.array(Y_TRUE)))
    assert out["accuracy"] == 1.0
    assert out["macro_f1"] == 1.0


def test_softmax_rows_sum_to_one_and_keep_order():
    probs = softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [-1.0, 5.0, 2.0]]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs[1], [1 / 3, 1 / 3, 1 / 3])
    assert probs[0].argmax() == 2 and probs[2].argmax() == 1
    np.testing.assert_allclose(probs[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())


def test_softmax_is_stable_for_large_logits():
    with np.errstate(over="raise", invalid="raise"):
        big = softmax(np.array([[1000.0, 1001.0, 1002.0], [-1e4, 0.0, 1e4]]))
    assert np.isfinite(big).all()
    np.testing.assert_allclose(big[0], softmax(np.array([[0.0, 1.0, 2.0]]))[0])
    np.testing.assert_allclose(big[1], [0.0, 0.0, 1.0])


def test_confident_errors_sorted_by_confidence_and_limited():
    texts = ["right", "wrong-low", "wrong-high", "wrong-mid", "also right"]
    y_true = [0, 0, 1, 2, 1]
    probs = np.array(
        [
            [0.9, 0.05, 0.05],
            [0.4, 0.45, 0.15],
            [0.98765, 0.01, 0.00235],
            [0.1, 0.7, 0.2],
            [0.2, 0.8, 0.0],
        ]
    )
    errors = confident_errors(texts, y_true, probs, LABELS)
    assert [e["text"] for e in errors] == ["wrong-high", "wrong-mid", "wrong-low"]
    assert errors[0] == {"text": "wrong-high", "label": "dog", "predicted": "cat", "confidence": 0.9877}
    assert errors[2] == {"text": "wrong-low", "label": "cat", "predicted": "dog", "confidence": 0.45}
    assert [e["text"] for e in confident_errors(texts, y_true, probs, LABELS, limit=2)] == ["wrong-high", "wrong-mid"]
    assert confident_errors(texts, y_true, probs, LABELS, limit=0) == []


def test_confident_errors_reject_probs_of_wrong_shape():
    with pytest.raises(ValueError, match=r"probs must have shape \(2, 3\)"):
        confident_errors(["a", "b"], [0, 1], np.ones((2, 2)) / 2, LABELS)


def load_reviews() -> tuple[list[str], list[int], list[str], list[int], list[str]]:
    frame = pd.read_csv(FIXTURES / "reviews.csv")
    labels = sorted(frame["verdict"].unique())
    ids = frame["verdict"].map({name: i for i, name in enumerate(labels)}).tolist()
    texts = frame["review_body"].tolist()
    return texts[0::2], ids[0::2], texts[1::2], ids[1::2], labels


def test_reviews_fixture_is_balanced_and_unique():
    frame = pd.read_csv(FIXTURES / "reviews.csv")
    assert list(frame.columns) == ["review_body", "verdict"]
    assert 200 <= len(frame) <= 300
    assert set(frame["verdict"]) == {"fresh", "rotten"}
    assert frame["verdict"].value_counts().min() >= 0.4 * len(frame)
    assert not frame["review_body"].duplicated().any()
    assert frame["review_body"].str.contains('"').any(), "some reviews should exercise CSV quoting"


def test_tfidf_baseline_beats_chance_on_reviews_and_is_deterministic():
    train_x, train_y, test_x, test_y, labels = load_reviews()
    first = tfidf_baseline(train_x, train_y, test_x, test_y, labels, seed=0)
    second = tfidf_baseline(train_x, train_y, test_x, test_y, labels, seed=0)
    assert first == second
    assert first["name"] == "TF-IDF + logistic regression"
    assert first["accuracy"] > 0.6
    assert set(first["per_class_f1"]) == {"fresh", "rotten"}
    assert 0.0 <= first["macro_f1"] <= 1.0
    assert json.loads(json.dumps(first)) == first


def test_tfidf_baseline_needs_two_classes():
    with pytest.raises(ValueError, match="at least two classes"):
        tfidf_baseline(["good", "great"], [0, 0], ["bad"], [1], ["pos", "neg"])


def make_report(*, baseline: dict | None, train: dict | None = None, labels: list[str] = LABELS) -> dict:
    texts = ["a | b\nsecond line", "fine", "ok", "meh", "sure", "x" * 300]
    probs = one_hot_logits(Y_PRED, 3) / 3 * 0.7 + 0.1
    return build_classification_report(
        task="text-classification",
        base_model="minilm-l6",
        labels=labels,
        test_texts=texts,
        y_true=Y_TRUE,
        probs=probs,
        baseline=baseline,
        data_summary={
            "rows": 60,
            "per_label": {"cat": 30, "dog": 20, "bird": 10},
            "dropped": 2,
            "duplicates": 1,
            "truncated": 3,
            "notices": ["2 rows had an empty label | dropped"],
        },
        train_info=train,
    )


def test_build_classification_report_has_the_documented_keys():
    report = make_report(
        baseline=None, train={"epochs": 3, "train_samples": 48, "wall_seconds": 12.5, "samples_per_second": 11.52}
    )
    assert {
        "task",
        "base_model",
        "labels",
        "metrics",
        "per_class",
        "confusion_matrix",
        "baseline",
        "errors",
        "data",
        "train",
    } <= set(report)
    assert report["n_test"] == 6 and report["split"] == "test"
    assert report["metrics"]["macro_f1"] == pytest.approx(22 / 45)
    assert report["confusion_matrix"]["matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert [e["text"] for e in report["errors"]] == ["ok", "x" * 300]
    assert report["errors"][0]["confidence"] == pytest.approx(0.8)


def test_render_markdown_tables_comparison_and_escaping():
    baseline = {
        "name": "TF-IDF + logistic regression",
        "accuracy": 0.5,
        "macro_f1": 0.3689,
        "per_class_f1": {"cat": 0.5, "dog": 0.4, "bird": 0.2},
    }
    report = make_report(baseline=baseline)
    # Make the first text one of the errors so the escaping of its pipe and newline is exercised.
    report["errors"].insert(0, {"text": "a | b\nsecond line", "label": "cat", "predicted": "dog", "confidence": 0.9})
    md = render_markdown(report)
    assert md.startswith("# text-classification report: minilm-l6")
    assert "| Macro F1 | 0.489 |" in md
    assert "+0.120 macro-F1** over TF-IDF + logistic regression (0.489 vs 0.369)" in md
    assert "| cat | 0.667 | 0.667 | 0.667 | 3 | 0.500 |  |" in md
    assert "| dog | 0.667 | 1.000 | 0.800 | 2 | 0.400 |  |" in md
    assert "| bird | 0.000 | 0.000 | 0.000 | 1 | 0.200 | **well below average** |" in md
    assert "| **cat** | 2 | 1 | 0 |" in md
    assert "a \\| b second line" in md
    assert "2 rows had an empty label \\| dropped" in md
    assert "x" * 200 + "…" in md and "x" * 201 not in md
    assert "Evaluate-only report" in md
    # Every row of every table has as many unescaped pipes as its header.
    for block in re.split(r"\n\s*\n", md):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        counts = {len(re.findall(r"(?<!\\)\|", row)) for row in rows}
        assert len(counts) <= 1, block


def test_render_markdown_warns_when_baseline_is_better():
    baseline = {"name": "TF-IDF + logistic regression", "accuracy": 0.9, "macro_f1": 0.9, "per_class_f1": {}}
    md = render_markdown(make_report(baseline=baseline, train={"epochs": 1, "wall_seconds": 2.0}))
    assert "worse than TF-IDF + logistic regression** by 0.411 macro-F1 (0.489 vs 0.900)" in md
    assert "- Epochs: 1" in md and "- Wall time (s): 2.000" in md
    assert "No baseline" not in md


def test_render_markdown_without_baseline_says_so():
    assert "No baseline was computed" in render_markdown(make_report(baseline=None))


def test_write_report_writes_both_files_and_keeps_chinese_readable(tmp_path):
    labels = ["正面", "负面", "中性"]
    report = make_report(baseline=None, labels=labels)
    json_path, md_path = write_report(report, tmp_path / "out", name="eval")
    assert (json_path.name, md_path.name) == ("eval.json", "eval.md")
    text = json_path.read_text(encoding="utf-8")
    assert "正面" in text and "\\u" not in text
    assert json.loads(text) == report
    assert "| 正面 |" in md_path.read_text(encoding="utf-8")
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["eval.json", "eval.md"]


def test_write_report_overwrites_and_rejects_paths_as_names(tmp_path):
    write_report(make_report(baseline=None), tmp_path)
    report = make_report(baseline=None)
    report["base_model"] = "second"
    json_path, _ = write_report(report, tmp_path)
    assert json.loads(json_path.read_text(encoding="utf-8"))["base_model"] == "second"
    with pytest.raises(ValueError, match="plain file name"):
        write_report(report, tmp_path, name="../escape")
