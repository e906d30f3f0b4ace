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
from engine.report import write_report
from engine.tasks.text_classification.report import (
    build_classification_report,
    confident_errors,
    render_markdown,
    tfidf_baseline,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
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


def training_data_summary() -> dict:
    """A summary shaped exactly like the one engine.tasks.text_classification.data.load_classification_data builds."""
    return {
        "files": [
            {
                "split": "train",
                "path": "/srv/uploads/job-7/animals.csv",
                "format": "csv",
                "encoding": "utf-8",
                "rows_read": 65,
                "rows_kept": 60,
            },
            {
                "split": "test",
                "path": "/srv/uploads/job-7/held|out.csv",
                "format": "csv",
                "encoding": "cp1252",
                "rows_read": 6,
                "rows_kept": 6,
            },
        ],
        "text_column": "sentence",
        "label_column": "animal",
        "labels": ["bird", "cat", "dog"],
        "rows": 66,
        "rows_per_label": {"bird": 10, "cat": 33, "dog": 23},
        "splits": {
            "train": {"rows": 54, "rows_per_label": {"bird": 8, "cat": 27, "dog": 19}, "source": "file"},
            "validation": {
                "rows": 6,
                "rows_per_label": {"bird": 1, "cat": 3, "dog": 2},
                "source": "split from the training file",
            },
            "test": {"rows": 6, "rows_per_label": {"bird": 1, "cat": 3, "dog": 2}, "source": "file"},
        },
        "length_tokens": {"p50": 12, "p90": 30, "p95": 41, "p99": 70, "max": 96, "unit": "tokens"},
        "truncated": {"count": 3, "max_length": 64, "unit": "tokens"},
        "dropped": {"blank_text": 2, "missing_label": 3},
        "duplicates": {"exact": 1, "conflicting_labels": 0, "across_splits": 2},
        "seed": 7,
        "notices": ["2 rows had an empty label | dropped", "labels are imbalanced"],
    }


def train_info() -> dict:
    """Training info shaped like engine.train._train_info, history included."""
    step = {"loss": 0.69, "grad_norm": 0.71, "learning_rate": 5e-05}
    return {
        "epochs": 2.0,
        "steps": 24,
        "train_samples": 192,
        "wall_seconds": 7.24,
        "samples_per_second": 95.92,
        "final_train_loss": 0.64187,
        "best_epoch": 2.0,
        "best_validation_macro_f1": 0.9161,
        "precision": "bf16",
        "device": "cpu",
        "threads": 2,
        "history": [
            {**step, "epoch": 0.5, "step": 6},
            {**step, "epoch": 1.0, "step": 12},
            {"eval_loss": 0.6499, "eval_accuracy": 0.7083, "eval_macro_f1": 0.6812, "epoch": 1.0, "step": 12},
            {**step, "epoch": 2.0, "step": 24},
            {"eval_loss": 0.5361, "eval_accuracy": 0.9167, "eval_macro_f1": 0.9161, "epoch": 2.0, "step": 24},
            {"train_runtime": 7.2, "train_loss": 0.64187, "epoch": 2.0, "step": 24},
        ],
    }


def make_report(
    *,
    baseline: dict | None,
    train: dict | None = None,
    labels: list[str] = LABELS,
    data_summary: dict | None = None,
) -> dict:
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
        data_summary=data_summary or training_data_summary(),
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
    assert "| Epochs | 1 |" in md and "| Wall time | 2.0 s |" in md
    assert "No baseline" not in md


def test_render_markdown_without_baseline_says_so():
    assert "No baseline was computed" in render_markdown(make_report(baseline=None))


def test_write_report_writes_both_files_and_keeps_chinese_readable(tmp_path):
    labels = ["正面", "负面", "中性"]
    report = make_report(baseline=None, labels=labels)
    json_path, md_path = write_report(report, tmp_path / "out", name="eval", renderer=render_markdown)
    assert (json_path.name, md_path.name) == ("eval.json", "eval.md")
    text = json_path.read_text(encoding="utf-8")
    assert "正面" in text and "\\u" not in text
    assert json.loads(text) == report
    assert "| 正面 |" in md_path.read_text(encoding="utf-8")
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["eval.json", "eval.md"]


def test_write_report_overwrites_and_rejects_paths_as_names(tmp_path):
    write_report(make_report(baseline=None), tmp_path, renderer=render_markdown)
    report = make_report(baseline=None)
    report["base_model"] = "second"
    json_path, _ = write_report(report, tmp_path, renderer=render_markdown)
    assert json.loads(json_path.read_text(encoding="utf-8"))["base_model"] == "second"
    with pytest.raises(ValueError, match="plain file name"):
        write_report(report, tmp_path, name="../escape", renderer=render_markdown)


def section(md: str, title: str) -> str:
    """The text of one `## title` section of report.md."""
    start = md.index(f"## {title}\n")
    end = md.find("\n## ", start + 1)
    return md[start : end if end != -1 else len(md)]


def table_rows(block: str, header: str) -> list[str]:
    """The body rows of the markdown table whose header line is `header`."""
    lines = block.splitlines()
    start = lines.index(header) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_render_markdown_data_section_tables_counts_and_notices():
    data = section(render_markdown(make_report(baseline=None, train=train_info())), "Data")
    assert table_rows(data, "| Split | File | Format | Encoding | Rows read | Rows kept |") == [
        "| train | animals.csv | csv | utf-8 | 65 | 60 |",
        "| test | held\\|out.csv | csv | cp1252 | 6 | 6 |",
    ]
    assert "/srv/uploads" not in data
    assert "Columns: text from 'sentence', labels from 'animal'." in data
    # Labels in the summary's order, each split's count, the label total, and a total row that matches the splits.
    assert table_rows(data, "| Label | Train | Validation | Test | Total |") == [
        "| bird | 8 | 1 | 1 | 10 |",
        "| cat | 27 | 3 | 3 | 33 |",
        "| dog | 19 | 2 | 2 | 23 |",
        "| **Total** | 54 | 6 | 6 | 66 |",
    ]
    assert "Validation: split from the training file (seed 7)." in data
    assert "Test: split" not in data
    assert "Length in tokens: median 12, p90 30, p95 41, p99 70, max 96." in data
    assert "- Dropped rows: 2 with blank text, 3 with no label." in data
    assert (
        "- Duplicates: 1 exact repeat(s) of an earlier row, 2 validation/test text(s) also in the training split."
        in data
    )
    assert "conflicting" not in data  # zero counts are left out
    assert "- Truncated: 3 of 66 text(s) (5%) are longer than max_length 64 tokens and lose their end." in data
    assert "- 2 rows had an empty label \\| dropped\n- labels are imbalanced" in data
    for raw in ("rows_per_label", "blank_text", "across_splits", "length_tokens", "{", "source:", "rows: 54"):
        assert raw not in data, raw


def test_render_markdown_data_section_says_none_for_clean_data():
    summary = training_data_summary()
    summary.update(
        truncated={"count": 0, "max_length": 64, "unit": "tokens"},
        dropped={"blank_text": 0, "missing_label": 0},
        duplicates={"exact": 0, "conflicting_labels": 0, "across_splits": 0},
        notices=[],
    )
    data = section(render_markdown(make_report(baseline=None, data_summary=summary)), "Data")
    assert "- Dropped rows: none." in data
    assert "- Duplicates: none." in data
    assert "- Truncated: none (every text fits in max_length 64 tokens)." in data
    assert "Notices" not in data


def test_render_markdown_renders_real_summaries_of_the_data_module():
    from engine.spec import DataSpec
    from engine.tasks.text_classification.data import load_classification_data, load_labeled_file

    path = str(FIXTURES / "reviews.csv")
    trained = load_classification_data(DataSpec(train=path), max_length=16, seed=3).summary
    data = section(render_markdown(make_report(baseline=None, data_summary=trained)), "Data")
    splits = trained["splits"]
    fresh = [str(splits[s]["rows_per_label"]["fresh"]) for s in ("train", "validation", "test")]
    assert f"| fresh | {' | '.join(fresh)} | 120 |" in data
    totals = [str(splits[s]["rows"]) for s in ("train", "validation", "test")]
    assert f"| **Total** | {' | '.join(totals)} | 240 |" in data
    assert "Validation and test: split from the training file (seed 3)." in data
    assert "| train | reviews.csv | csv | utf-8 | 240 | 240 |" in data
    assert "Length in tokens (estimated):" in data and "max_length 16 tokens" in data

    # An evaluate-only summary covers one file: no splits, duplicates or seed, and a single count per label.
    scored = load_labeled_file(path, max_length=512).summary
    assert "splits" not in scored and "duplicates" not in scored
    md = render_markdown(make_report(baseline=None, data_summary=scored))
    data = section(md, "Data")
    assert table_rows(data, "| Label | Rows |") == ["| fresh | 120 |", "| rotten | 120 |", "| **Total** | 240 |"]
    assert "| test | reviews.csv | csv | utf-8 | 240 | 240 |" in data
    assert "Duplicates" not in data and "seed" not in data and "Validation" not in data
    assert "- Truncated: none (every text fits in max_length 512 tokens)." in data
    assert "Evaluate-only report" in section(md, "Training")


def test_render_markdown_training_section_summarises_history():
    train = section(render_markdown(make_report(baseline=None, train=train_info())), "Training")
    assert table_rows(train, "| Setting | Value |") == [
        "| Epochs | 2 |",
        "| Steps | 24 |",
        "| Training samples | 192 |",
        "| Wall time | 7.2 s |",
        "| Samples per second | 95.9 |",
        "| Precision | bf16 |",
        "| Device | cpu |",
        "| CPU threads | 2 |",
        "| Best epoch | 2 |",
        "| Best validation macro-F1 | 0.916 |",
        "| Final training loss | 0.6419 |",
    ]
    # One row per evaluation, none for the training-loss log lines or the closing summary entry.
    assert table_rows(train, "| Epoch | Validation loss | Accuracy | Macro-F1 |") == [
        "| 1 | 0.650 | 0.708 | 0.681 |",
        "| 2 (best) | 0.536 | 0.917 | 0.916 |",
    ]
    for raw in ("history", "grad_norm", "learning_rate", "train_runtime", "eval_", "{"):
        assert raw not in train, raw


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.04, "0.0 s"), (59.94, "59.9 s"), (125.0, "2 min 05 s"), (3725.0, "1 h 02 min")]
)
def test_render_markdown_wall_time_reads_as_a_duration(seconds, shown):
    md = render_markdown(make_report(baseline=None, train={**train_info(), "wall_seconds": seconds}))
    assert f"| Wall time | {shown} |" in md


def test_render_markdown_tolerates_missing_and_unknown_keys():
    train = {
        "epochs": 2.5,
        "best_epoch": None,
        "peak_memory_gb": 1.23456,
        "history": [{"eval_macro_f1": 0.5, "epoch": 1.0}, {"loss": 0.3}],
        "extra": {"nested": 1},
    }
    md = render_markdown(make_report(baseline=None, train=train, data_summary={"rows": 5, "notices": "one notice"}))
    training = section(md, "Training")
    assert table_rows(training, "| Setting | Value |") == [
        "| Epochs | 2.5 |",
        "| Best epoch | n/a |",
        "| Peak memory gb | 1.235 |",
    ]
    assert table_rows(training, "| Epoch | Validation loss | Accuracy | Macro-F1 |") == ["| 1 | n/a | n/a | 0.500 |"]
    assert "nested" not in training
    data = section(md, "Data")
    assert "- one notice" in data
    assert "| Label |" not in data and "| Split |" not in data


def test_a_collapsed_model_is_called_out_at_the_top_with_its_likely_cause():
    from engine.tasks.text_classification.report import collapse_warnings
    from engine.tasks.text_classification.views import headline_markdown

    labels = ["正面", "负面"]
    y_true = [0, 1] * 10
    chinese = {"language": {"unknown_token_rate": 0.68}, "suggested_base_model": "gemma3-270m"}
    baseline = {"name": "TF-IDF + logistic regression", "macro_f1": 0.8}
    warnings = collapse_warnings(y_true, [0] * 20, labels, {"macro_f1": 0.33}, baseline, chinese)
    assert warnings[0].startswith("The model predicts '正面' for 100% of the test rows, though only 50% really are")
    assert "68% of the tokens are unknown to the base model; fine-tune gemma3-270m instead" in warnings[0]
    assert warnings[1].startswith("The fine-tuned model scores below the TF-IDF + logistic regression baseline")
    assert collapse_warnings(y_true, y_true, labels, {"macro_f1": 1.0}, baseline, chinese) == []
    # Most rows really are that class: predicting it a lot is no collapse; the English cause names epochs.
    mostly = [0] * 18 + [1, 1]
    assert collapse_warnings(mostly, [0] * 20, labels, {"macro_f1": 0.47}, None, {}) == []
    lone = collapse_warnings(y_true, [1] * 20, labels, {"macro_f1": 0.33}, None, {"language": {}})
    assert "too few epochs" in lone[0]
    report = {"task": "text-classification", "metrics": {"macro_f1": 0.33}, "warnings": warnings, "n_test": 20}
    headline = headline_markdown(report, "train minilm-l6 on 评论.csv")
    assert headline.index("⚠ **The model predicts '正面'") < headline.index("Scored on 20 held-out test rows")
