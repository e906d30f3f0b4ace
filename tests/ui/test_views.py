"""The web app's pieces that need no browser: spec-driven widgets, the equivalent CLI command, page texts, charts."""

from __future__ import annotations

import shlex
from datetime import datetime
from pathlib import Path

import gradio as gr
import pytest

from engine.report_views import baseline_sentence, confusion_html, per_class_frame
from engine.spec import DataSpec, JobSpec, TrainingParams
from engine.tasks.text_classification.views import summary_markdown
from ui.charts import line_chart, training_curves_html
from ui.cli import build_parser, spec_from_args
from ui.context import Users
from ui.tabs import train
from ui.tabs.common import bounds
from ui.views import comparison_frame, error_markdown, jobs_frame, progress_html
from worker.records import JobEvent

REPORT = {
    "task": "text-classification",
    "base_model": "minilm-l6",
    "n_test": 24,
    "metrics": {"accuracy": 0.9, "macro_f1": 0.88, "weighted_f1": 0.89},
    "per_class": {
        "fresh": {"precision": 0.9, "recall": 0.8, "f1": 0.847, "support": 12},
        "<rotten>": {"precision": 0.85, "recall": 0.95, "f1": 0.897, "support": 12},
    },
    "confusion_matrix": {"labels": ["fresh", "<rotten>"], "matrix": [[10, 2], [1, 11]]},
    "baseline": {"name": "TF-IDF + logistic regression", "macro_f1": 0.8, "per_class_f1": {"fresh": 0.79}},
    "errors": [],
}


def job(**fields):
    from worker.records import Job

    defaults = {
        "id": "0123456789abcdef",
        "owner": "alice",
        "kind": "train",
        "spec": {"base_model": "minilm-l6", "data": {"train": "/x/uploads/1/reviews.csv"}, "params": {"epochs": 1}},
        "queue": "playground",
        "status": "queued",
        "created_at": datetime(2024, 1, 1, 12, 0),
    }
    return Job(**{**defaults, **fields})


def test_widget_bounds_and_help_come_from_the_spec():
    assert bounds(TrainingParams.model_fields["batch_size"], 1) == (1, 1024)
    assert bounds(TrainingParams.model_fields["epochs"], 0.5) == (0.5, 100)  # gt=0: one step inside
    with gr.Blocks():
        epochs = train._widget("epochs", "slider", 1)
        rate = train._widget("learning_rate", "number", 1e-5)
        share = train._widget("test_fraction", "slider", 0.01, DataSpec)
    assert (epochs.minimum, epochs.maximum) == (1, train.SLIDER_CAPS["epochs"])
    assert epochs.info == TrainingParams.model_fields["epochs"].description
    assert rate.maximum == 1e-2 and rate.value == TrainingParams.model_fields["learning_rate"].default
    assert (share.minimum, share.maximum) == (0.01, 0.5)


def test_the_equivalent_command_runs_the_same_job_through_the_cli(tmp_path: Path):
    data = tmp_path / "my reviews.csv"
    data.write_text("review_body,verdict\n", encoding="utf-8")
    params = {**TrainingParams().model_dump(include=set(train.LABELS)), "epochs": 2, "learning_rate": 5e-4}
    spec = train.build_spec(
        str(data), "review_body", "verdict", "text-classification", "minilm-l6", params, {"test_fraction": 0.2}
    )
    command = train.cli_command(spec)
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[:2] == ["playground", "train"]
    assert "--seed" not in argv  # defaults are left out
    from_cli = spec_from_args(build_parser().parse_args(argv[1:]))
    expected = JobSpec.from_dict({**spec, "data": {**spec["data"], "test_fraction": 0.1}})
    assert from_cli == expected  # the CLI has no split flags: everything else matches exactly


def test_users_from_flags_and_file(tmp_path: Path):
    auth_file = tmp_path / "users.txt"
    auth_file.write_text("# team\nalice:s3cret:with:colons\n\nbob:pw\n", encoding="utf-8")
    users = Users.parse(["carol:x"], auth_file)
    assert users.enabled
    assert users.check("alice", "s3cret:with:colons") and users.check("carol", "x")
    assert not users.check("alice", "wrong") and not users.check("mallory", "pw") and not users.check(None, None)
    with pytest.raises(ValueError, match="line 2: expected user:password"):
        (tmp_path / "bad.txt").write_text("ok:1\nnocolon\n", encoding="utf-8")
        Users.parse([], tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="given twice"):
        Users.parse(["a:1", "a:2"])
    assert not Users.parse([]).enabled


def test_data_summary_and_errors_read_as_sentences():
    summary = {
        "rows": 240,
        "text_column": "review_body",
        "label_column": "verdict",
        "rows_per_label": {"fresh": 120, "rotten": 120},
        "splits": {"train": {"rows": 192}, "validation": {"rows": 24}, "test": {"rows": 24}},
        "length_tokens": {"p50": 13, "p95": 18, "max": 22, "unit": "words"},
        "notices": ["3 row(s) repeat an earlier row", "lengths are counted in words (no tokenizer given); ..."],
    }
    text = summary_markdown(summary, "reviews.csv")
    assert "Ready to train" in text and "192 rows to learn from" in text and "**fresh** (120)" in text
    assert "repeat an earlier row" in text and "no tokenizer" not in text  # internal notes stay out
    message = error_markdown("label column 'sentiment' not found; columns are ['a', 'b']", "Can't use it")
    assert message.startswith("✗ **Can't use it.** Label column 'sentiment' not found")


def test_report_views_escape_labels_and_compare_with_the_baseline():
    html = confusion_html(REPORT)
    assert "&lt;rotten&gt;" in html and "<rotten>" not in html
    assert [cell in html for cell in (">10<", ">2<", ">1<", ">11<")] == [True] * 4
    frame = per_class_frame(REPORT)
    assert list(frame.columns) == ["Label", "Precision", "Recall", "F1", "Support", "Baseline F1"]
    assert frame.loc[0, "F1"] == "0.847" and frame.loc[0, "Baseline F1"] == "0.790"  # three decimals, always
    assert "Better than the simple baseline" in baseline_sentence(REPORT)
    worse = {**REPORT, "baseline": {**REPORT["baseline"], "macro_f1": 0.95}}
    assert "Worse than the simple baseline" in baseline_sentence(worse)
    table = comparison_frame([(job(status="succeeded"), REPORT), (job(id="f" * 16, status="succeeded"), worse)])
    assert list(table.columns) == ["", "01234567", "ffffffff"]
    assert table.set_index("").loc["F1 · <rotten>"].tolist() == ["0.897", "0.897"]


def test_job_table_and_progress_show_queue_position_and_time_left():
    waiting = job(status="queued", position=2)
    running = job(id="1" * 16, status="running", step=30, total_steps=120, eta_seconds=150, epoch=0.5)
    table = jobs_frame([running, waiting])
    assert table["Progress"].tolist() == ["25%", "#2 in line"]
    assert table["Time left"].tolist() == ["2 min", ""]
    assert "Step 30 of 120 · about 2 min left" in progress_html(running)
    assert 'aria-valuenow="25"' in progress_html(running)
    assert "number 2 in line" in progress_html(waiting)
    scoring = job(status="running", step=6, total_steps=6, eta_seconds=1, epoch=1.0)
    assert "Trained (6 steps): scoring the test split and writing the report…" in progress_html(scoring)
    assert "1 s left" not in progress_html(scoring)  # once said for 4.5 minutes of evaluation
    evaluating = job(status="running", step=6, total_steps=6, phase="evaluating")
    assert (
        "✓ reading the data · ✓ loading the model · ✓ training (6/6 steps) · ▶ scoring the test split… · "
        "writing the report"
    ) in progress_html(evaluating)
    assert "▶ loading the model…" in progress_html(job(status="running", phase="loading"))
    failed = job(status="failed", error="label column 'x' not found", hint="pick the label column")
    from ui.views import job_markdown

    assert "**What to do:** pick the label column" in job_markdown(failed)


def test_training_curves_draw_every_series_that_has_points():
    events = [
        JobEvent(id=i, job_id="j", attempt=1, kind="log", at=datetime(2024, 1, 1), step=i, loss=1.0 / i)
        for i in range(1, 6)
    ]
    events.append(
        JobEvent(id=9, job_id="j", attempt=1, kind="eval", at=datetime(2024, 1, 1), step=5, loss=0.3,
                 metrics={"macro_f1": 0.9, "accuracy": 0.91})
    )  # fmt: skip
    html = training_curves_html(events, total_steps=10)
    assert html.count("<polyline") == 4  # training loss, validation loss, macro-F1, accuracy
    assert ">10</text>" in html  # the step axis spans the whole run, not just the steps done so far
    assert "waiting for the first steps" in training_curves_html([])
    assert "<polyline" not in line_chart({"a": []}, title="t", x_label="x", empty="nothing yet")


@pytest.mark.parametrize(
    ("metrics", "baseline", "headline"),
    [
        ({"accuracy": 0.9, "macro_f1": 0.8, "weighted_f1": 0.8, "micro_f1": 0.9}, {"macro_f1": 0.7}, "macro-F1 0.800"),
        (
            {"accuracy": 0.99, "macro_f1": 0.8, "weighted_f1": 0.8, "micro_f1": 0.85, "token_accuracy": 0.99},
            {"micro_f1": 0.7},
            "entity micro-F1 0.850",
        ),
        ({"loss": 3.1, "perplexity": 22.2, "base_perplexity": 45.0}, None, "perplexity 22.20 (base 45.00)"),
    ],
)
def test_job_headline_fits_the_task(metrics, baseline, headline):
    from types import SimpleNamespace

    from ui.views import result_text
    from worker.runtime import report_summary

    summary = report_summary({"metrics": metrics, "baseline": baseline})
    assert result_text(SimpleNamespace(status="succeeded", summary=summary, error=None)) == headline
