"""The Report, Playground and Jobs tab callbacks called directly, without a browser, on a real AppContext.

Finished jobs are recorded in a real job store (SQLite under a temporary home) and given a hand-written report.json,
so these tests need no trained model; they check what a person would see: headlines, tables, visibility, messages.
"""

from __future__ import annotations

import inspect
import json
import uuid
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest

from engine.tasks import get_task
from ui.context import AppContext
from ui.tabs import jobs, playground, report
from ui.tabs.common import bind
from worker.records import SUCCEEDED, Job

ALICE = gr.Request(username="alice")
BOB = gr.Request(username="bob")
# A mistake a person would recognise: long, accented, several lines, with characters HTML and markdown care about.
MISTAKE = (
    "Ein großartiger Film über Ängste — «très émouvant», <b>nicht</b> *kitschig*.\n"
    "Zweite Zeile: Çà et là, naïveté & façade.\n" + "Lange Rezension ohne Ende. " * 20
)
CLASSIFICATION_REPORT = {
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
    "errors": [{"text": MISTAKE, "label": "fresh", "predicted": "<rotten>", "confidence": 0.98765}],
}
CHAT_REPORT = {
    "task": "chat",
    "base_model": "smollm2-135m-instruct",
    "n_test": 4,
    "metrics": {"loss": 1.2, "perplexity": 3.32, "base_loss": 2.0, "base_perplexity": 7.39},
    "generations": [
        {
            "prompt": "Wie exportiere ich?",
            "reference": "Über Datei > Exportieren.",
            "base": "Keine Ahnung.",
            "fine_tuned": "Gehen Sie zu Datei > Exportieren.",
        }
    ],
}
CLASSIFICATION_SPEC = {
    "task": "text-classification",
    "base_model": "minilm-l6",
    "data": {"train": "/x/uploads/1/reviews.csv"},
    "params": {"epochs": 2, "learning_rate": 5e-4},
}
CHAT_SPEC = {"task": "chat", "base_model": "smollm2-135m-instruct", "data": {"train": "/x/uploads/2/support.jsonl"}}


def finished_job(
    ctx: AppContext, spec: dict, report_json: dict | None = None, owner: str = "alice", summary: dict | None = None
) -> Job:
    """A succeeded job in the store, as a worker leaves it, with report.json (and report.md) in its folder."""
    store = ctx.jobs.store
    job_id = uuid.uuid4().hex[:16]
    store.create(job_id=job_id, owner=owner, kind="train", spec=spec, queue=ctx.settings.queue, max_attempts=3)
    claimed = store.claim(job_id, task_id=f"{job_id}.1", host="test-host", name="test", pid=1)
    assert claimed is not None
    assert store.finish(job_id, claimed.attempts, SUCCEEDED, message="done", summary=summary)
    job = ctx.jobs.get(job_id)
    if report_json is not None:
        folder = Path(job.artifact_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps(report_json, ensure_ascii=False), encoding="utf-8")
        (folder / "report.md").write_text(f"# Report of {job_id}\n", encoding="utf-8")
    return job


def test_the_headline_shows_the_reports_numbers_and_mistakes_keep_their_text(ctx: AppContext):
    job = finished_job(ctx, CLASSIFICATION_SPEC, CLASSIFICATION_REPORT)
    headline, per_class, confusion, errors, files, model_zip = report.show_report(ctx, job.id, ALICE)

    assert f"### Report: train minilm-l6 on reviews.csv, 2 epochs (job `{job.id[:8]}`)" in headline
    assert "Scored on 24 held-out test rows" in headline
    assert "**0.900** | **0.880** | **0.890**" in headline  # accuracy, macro F1, weighted F1
    assert "macro-F1 0.880 vs 0.800 (+0.080)" in headline and "Better than the simple baseline" in headline
    assert per_class["Label"].tolist() == ["fresh", "<rotten>"]
    assert per_class["F1"].tolist() == ["0.847", "0.897"] and per_class["Support"].tolist() == [12, 12]
    assert per_class["Baseline F1"].iloc[0] == "0.790"
    assert "&lt;rotten&gt;" in confusion and "<rotten>" not in confusion  # label escaped, matrix counts shown
    assert ">11</td>" in confusion
    assert len(errors) == 1
    mistake = errors.iloc[0]
    assert mistake["Text"] == MISTAKE[:300] and "\n" in mistake["Text"] and "«très émouvant»" in mistake["Text"]
    assert (mistake["True label"], mistake["Predicted"], mistake["Confidence"]) == ("fresh", "<rotten>", "0.988")
    assert sorted(Path(f).name for f in files) == [f"report-{job.id[:8]}.json", f"report-{job.id[:8]}.md"]
    downloaded = next(Path(f) for f in files if f.endswith(".json"))
    assert json.loads(downloaded.read_text(encoding="utf-8"))["errors"][0]["text"] == MISTAKE
    assert model_zip is None  # a new pick clears the previous model download


def test_a_classification_report_shows_scores_and_mistakes_but_no_task_extras(ctx: AppContext):
    job = finished_job(ctx, CLASSIFICATION_SPEC, CLASSIFICATION_REPORT)
    scores, how_to_read, ner, details, chat, generations, errors = report.show_task_parts(ctx, job.id, ALICE)

    assert scores.visible is True and errors.visible is True
    assert errors.label == report.ERRORS_LABEL
    assert ner.visible is False and details == ""
    assert chat.visible is False and generations.empty
    assert how_to_read == get_task("text-classification").how_to_read and "*Precision*" in how_to_read


def test_a_chat_report_shows_perplexities_and_generations_instead_of_label_scores(ctx: AppContext):
    job = finished_job(ctx, CHAT_SPEC, CHAT_REPORT)
    headline, per_class, confusion, errors, files, _ = report.show_report(ctx, job.id, ALICE)

    assert "| Base model (not fine-tuned) | 2.0000 | 7.39 |" in headline
    assert "| **Fine-tuned** | **1.2000** | **3.32** |" in headline
    assert "perplexity fell from 7.39 to 3.32" in headline
    assert "Measured on 4 held-out conversations" in headline
    assert per_class.empty and confusion == "" and errors.empty and len(files) == 2

    scores, how_to_read, ner, _, chat, generations, errors_box = report.show_task_parts(ctx, job.id, ALICE)
    assert scores.visible is False and errors_box.visible is False and ner.visible is False
    assert chat.visible is True
    assert generations.to_dict("records") == [
        {
            "Prompt": "Wie exportiere ich?",
            "Reference": "Über Datei > Exportieren.",
            "Base model": "Keine Ahnung.",
            "Fine-tuned": "Gehen Sie zu Datei > Exportieren.",
        }
    ]
    assert how_to_read == get_task("chat").how_to_read


def test_no_pick_reads_as_the_empty_report_and_someone_elses_run_is_refused(ctx: AppContext):
    empty = report.show_report(ctx, None, ALICE)
    assert empty[0] == report.NO_REPORT and empty[1].empty and empty[2] == "" and empty[4] is None
    scores, *_, errors = report.show_task_parts(ctx, "", ALICE)
    assert scores.visible is True and errors.label == report.ERRORS_LABEL

    job = finished_job(ctx, CLASSIFICATION_SPEC, CLASSIFICATION_REPORT)
    with pytest.raises(gr.Error, match=f"no job '{job.id}'"):
        report.show_report(ctx, job.id, BOB)
    with pytest.raises(gr.Error, match="not logged in"):
        report.show_report(ctx, job.id, gr.Request())
    scores, *_ = report.show_task_parts(ctx, job.id, BOB)  # the parts fall back to the empty layout
    assert scores.visible is True


def test_compare_runs_puts_each_run_in_a_column_and_charts_headline_scores(ctx: AppContext):
    first = finished_job(ctx, CLASSIFICATION_SPEC, CLASSIFICATION_REPORT)
    worse = {**CLASSIFICATION_REPORT, "metrics": {"accuracy": 0.7, "macro_f1": 0.654321, "weighted_f1": 0.7}}
    second = finished_job(ctx, {**CLASSIFICATION_SPEC, "params": {"epochs": 1}}, worse)

    table, chart = report.compare_runs(ctx, [first.id, second.id], ALICE)

    assert list(table.columns) == ["", first.id[:8], second.id[:8]]
    rows = table.set_index("")
    assert rows.loc["Macro F1"].tolist() == ["0.88", "0.654"]
    assert rows.loc["Epochs"].tolist() == ["2", "1"]
    assert rows.loc["F1 · <rotten>"].tolist() == ["0.897", "0.897"]
    assert chart["run"].tolist() == [first.id[:8], second.id[:8]]
    assert chart["score"].tolist() == [0.88, 0.654]

    with pytest.warns(UserWarning, match="at least two finished runs"):
        table, chart = report.compare_runs(ctx, [first.id], ALICE)
    assert list(table.columns) == ["", first.id[:8]] and len(chart) == 1
    with pytest.raises(gr.Error, match="no job"):
        report.compare_runs(ctx, [first.id, "0" * 16], ALICE)


def test_the_run_pickers_list_only_the_owners_finished_runs(ctx: AppContext):
    older = finished_job(ctx, CLASSIFICATION_SPEC, CLASSIFICATION_REPORT)
    newer = finished_job(ctx, CHAT_SPEC, CHAT_REPORT)
    finished_job(ctx, CLASSIFICATION_SPEC, CLASSIFICATION_REPORT, owner="bob")
    ctx.jobs.store.create(
        job_id="f" * 16, owner="alice", kind="train", spec=CLASSIFICATION_SPEC, queue="q", max_attempts=3
    )  # queued: not a run with a report yet

    picker, compare = report.refresh_choices(ctx, older.id, ALICE)
    assert [value for _, value in picker.choices] == [newer.id, older.id]
    assert picker.value == older.id  # the current pick stays
    assert [value for _, value in compare.choices] == [newer.id, older.id]
    picker, _ = report.refresh_choices(ctx, "not-a-run", ALICE)
    assert picker.value == newer.id  # otherwise the newest run


def test_the_playground_shows_the_section_of_the_picked_models_task(ctx: AppContext):
    chat_job = finished_job(ctx, CHAT_SPEC, CHAT_REPORT)
    classifier = finished_job(ctx, CLASSIFICATION_SPEC, CLASSIFICATION_REPORT)

    classify, tag, chat, files, conversation, base_conversation, warning = playground.model_task(
        ctx, chat_job.id, ALICE
    )
    assert chat.visible is True and files.visible is False
    assert classify.visible is False and tag.visible is False
    assert conversation == [] and base_conversation == []  # a new model starts a new conversation
    assert warning == ""  # a model that learned: no banner

    classify, tag, chat, files, *_ = playground.model_task(ctx, classifier.id, ALICE)
    assert classify.visible is True and files.visible is True and chat.visible is False
    classify, *_ = playground.model_task(ctx, chat_job.id, BOB)  # not bob's: the default task's section
    assert classify.visible is True


def test_a_collapsed_model_is_called_out_in_the_jobs_tab_and_the_playground(ctx: AppContext):
    from worker.runtime import report_summary

    collapsed = {
        **CLASSIFICATION_REPORT,
        "warnings": [
            "The model predicts '正面' for 100% of the test rows, though only 52% really are: it has "
            "collapsed to (nearly) one class. Likely cause: 68% of the tokens are unknown to the base "
            "model; fine-tune gemma3-270m instead."
        ],
    }
    job = finished_job(ctx, CLASSIFICATION_SPEC, collapsed, summary=report_summary(collapsed))

    *_, banner = playground.model_task(ctx, job.id, ALICE)
    assert banner.startswith("⚠ **Read this before you trust its answers.** The model predicts '正面' for 100%")
    assert "fine-tune gemma3-270m instead" in banner
    heading = jobs.job_status(ctx, job.id, ALICE)[0]
    assert heading.index("collapsed to (nearly) one class") < heading.index("Result on the test split")
    table = jobs.list_jobs(ctx, ALICE)[0]
    assert table["Result"].iloc[0].startswith("⚠ macro-F1")  # the job list flags it too
    from ui.cli import format_report_summary

    printed = format_report_summary(collapsed)
    assert printed.startswith("WARNING: The model predicts '正面' for 100%") and "test accuracy" in printed


def test_share_links_are_listed_with_the_address_the_browser_used_and_revoked_by_their_owner(ctx: AppContext):
    job = finished_job(ctx, CLASSIFICATION_SPEC, CLASSIFICATION_REPORT)
    request = gr.Request(username="alice", headers={"host": "demo.example:8080", "x-forwarded-proto": "https"})

    message, shares, revoke_pick = playground.create_share(ctx, job.id, False, request)

    [share] = ctx.shares.list("alice")
    url = f"https://demo.example:8080{share.path}"
    assert message == f"✓ **Share link created:** [{url}]({url}) (anyone with it can try this model)"
    assert shares["Link"].tolist() == [f"[{url}]({url})"]
    assert shares["Model"].tolist() == [f"{job.id[:8]} · train minilm-l6 on reviews.csv, 2 epochs"]
    assert [value for _, value in revoke_pick.choices] == [share.token] and revoke_pick.value is None

    with pytest.raises(gr.Error, match="not one of your active links"):
        playground.revoke_share(ctx, share.token, BOB)
    with pytest.raises(gr.Error, match="Pick a link to revoke first"):
        playground.revoke_share(ctx, None, ALICE)
    message, shares, revoke_pick = playground.revoke_share(ctx, share.token, ALICE)
    assert message == "Link revoked: it now answers “not found”."
    assert shares.empty and list(shares.columns) == playground.SHARE_COLUMNS and revoke_pick.choices == []
    with pytest.raises(gr.Error, match="not one of your active links"):
        playground.revoke_share(ctx, share.token, ALICE)  # revoked once is gone


def test_revoking_an_unknown_link_is_a_user_error(ctx: AppContext):
    with pytest.raises(gr.Error, match="That link is not one of your active links.") as raised:
        playground.revoke_share(ctx, "no-such-token", ALICE)
    assert raised.value.title == "Can't do that yet"


def test_playground_inputs_are_checked_before_any_model_is_loaded(ctx: AppContext):
    job = finished_job(ctx, CLASSIFICATION_SPEC, CLASSIFICATION_REPORT)
    with pytest.raises(gr.Error, match="Type a text to classify first"):
        playground.classify(ctx, job.id, "   ", False, ALICE)
    with pytest.raises(gr.Error, match="Type a text to tag first"):
        playground.tag(ctx, job.id, "", ALICE)
    with pytest.raises(gr.Error, match="Upload a file of texts first"):
        playground.predict_file(ctx, job.id, None, None, ALICE)
    with pytest.raises(gr.Error, match=f"the model files of job {job.id} are missing"):
        playground.classify(ctx, job.id, "A warm film.", False, ALICE)
    with pytest.raises(gr.Error, match=f"the model files of job {job.id} are missing; train it again"):
        report.download_model(ctx, job.id, ALICE)
    replies = bind(ctx, playground.chat)(job.id, "", [], [], "", 0.7, 0.9, 32, False, ALICE)
    assert inspect.isgenerator(replies)  # bound, chat still streams
    with pytest.raises(gr.Error, match="Type a message first"):
        next(replies)


def test_the_jobs_tab_shows_a_finished_run_and_its_buttons(ctx: AppContext):
    job = finished_job(ctx, CLASSIFICATION_SPEC, CLASSIFICATION_REPORT, summary={"macro_f1": 0.88})

    table, picker, ids = jobs.list_jobs(ctx, ALICE)
    assert ids == [job.id] and [value for _, value in picker.choices] == [job.id]
    assert isinstance(table, pd.DataFrame) and len(table) == 1

    detail, _, _, _, cancel, open_report, open_playground = jobs.job_status(ctx, job.id, ALICE)
    assert detail.startswith("### Train minilm-l6 on reviews.csv, 2 epochs")
    assert "Result on the test split: **macro-F1 0.880**" in detail
    assert cancel.visible is False and open_report.visible is True and open_playground.visible is True
    assert jobs.job_status(ctx, None, ALICE)[0] == jobs.NO_JOB
    with pytest.raises(gr.Error, match="no job"):
        jobs.job_status(ctx, job.id, BOB)

    first = jobs.tick(ctx, job.id, "", ALICE)
    assert len(first) == jobs.TICK_OUTPUTS and first[2] == [job.id]
    again = jobs.tick(ctx, job.id, first[-1], ALICE)
    assert all(isinstance(output, dict) and output.get("__type__") == "update" for output in again)  # skipped

    message, new_id = jobs.evaluate_job(ctx, job.id, None, None, None, ALICE)
    assert message == "✗ **Not started.** Upload a labeled file to evaluate on first"
    assert new_id == gr.skip()  # the picked job stays


def test_the_tabs_hand_the_app_callbacks_with_the_context_filled_in(ctx: AppContext):
    job = finished_job(ctx, CLASSIFICATION_SPEC, CLASSIFICATION_REPORT)
    with gr.Blocks():
        report_tab = report.build(ctx)
        playground_tab = playground.build(ctx)
        jobs_tab = jobs.build(ctx)

    picker, _ = report_tab.refresh_choices(None, ALICE)
    assert picker.value == job.id
    model, shares, revoke_pick = playground_tab.refresh_choices(None, ALICE)
    assert model.value == job.id and shares.empty
    _, _, ids = jobs_tab.list_jobs(ALICE)
    assert ids == [job.id]
    assert list(inspect.signature(report_tab.refresh_choices).parameters) == ["current", "request"]
