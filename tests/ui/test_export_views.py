"""The Report tab's Export section and the Playground's variant picker, without a browser: the compression table as a
person reads it, the metric-against-latency chart, when the section shows, what Export queues, and the pickers.

Reports are hand-made dicts shaped like engine.export's report.json; jobs live in a real job store (SQLite under a
temporary home), so no model is trained or loaded here.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path

import gradio as gr
import pytest

from engine.export import VARIANTS
from engine.export.report import compression_table
from engine.tasks import get_task
from ui.charts import tradeoff_chart
from ui.context import AppContext
from ui.tabs import playground, playground_variants, report, report_export
from ui.tabs.report_export import compression_frame, export_status, exports_view, number, offers_export, points
from worker.records import FAILED, RUNNING, SUCCEEDED, Job

ALICE = gr.Request(username="alice")
BOB = gr.Request(username="bob")
CLASSIFIER = get_task("text-classification")
ORIGINAL = {
    "variant": "original",
    "precision": "fp32",
    "size_mb": 90.87,
    "latency_p50_ms": 8.123,
    "texts_per_second": 412.3,
    "metrics": {"accuracy": 0.9167, "macro_f1": 0.9123},
}
SPEC = {"task": "text-classification", "base_model": "minilm-l6", "data": {"train": "/x/uploads/1/critiques.csv"}}


def export_report(name: str, runtime: str, precision: str, size: float, latency: float, speed: float, f1: float):
    """An export report.json as engine.export writes it, the variant measured beside ORIGINAL."""
    variant = {"name": name, "runtime": runtime, "precision": precision, "source": "/runs/a/model", "max_length": 64}
    if name == "pruned":
        variant.update(sparsity=0.5, zero_share=0.4987, pruned_layers=37)
    exported = {
        "variant": name,
        "precision": precision,
        "size_mb": size,
        "latency_p50_ms": latency,
        "texts_per_second": speed,
        "metrics": {"accuracy": 0.9167, "macro_f1": f1},
        "metric_change": {"accuracy": 0.0, "macro_f1": round(f1 - ORIGINAL["metrics"]["macro_f1"], 4)},
        "size_ratio": round(size / ORIGINAL["size_mb"], 3),
        "speedup": round(speed / ORIGINAL["texts_per_second"], 2),
    }
    return {
        "kind": "export",
        "task": "text-classification",
        "variant": variant,
        "test_rows": 48,
        "headline_metric": "macro_f1",
        "metrics": exported["metrics"],
        "original": ORIGINAL,
        "exported": exported,
    }


INT8 = export_report("int8", "torchscript", "int8", 23.456, 3.21, 1234.4, 0.9162)
PRUNED = export_report("pruned", "transformers", "fp32", 90.87, 8.0, 415.0, 0.9)
BF16 = export_report("bf16", "transformers", "bf16", 45.5, 12.5, 300.0, 0.9123)


def test_the_compression_table_reads_as_a_person_would_write_it():
    frame = compression_frame(compression_table([INT8, PRUNED, BF16]), "macro_f1", "macro F1")
    assert list(frame.columns) == [*report_export.COLUMNS, "Macro F1", "Macro F1 change"]
    rows = {row[0]: row for row in frame.values.tolist()}
    assert list(rows) == ["original", "int8", "pruned 50%", "bf16"]  # the original first, then newest first
    assert rows["original"] == [
        "original",
        "transformers",
        "fp32",
        "90.9",
        "8.12",
        "412",
        "1× (reference)",
        "0.912",
        "reference",
    ]
    assert rows["int8"] == ["int8", "torchscript", "int8", "23.5", "3.21", "1234", "2.99×", "0.916", "+0.4 pts"]
    assert rows["pruned 50%"][3:] == ["90.9", "8", "415", "1.01×", "0.900", "-1.2 pts"]
    assert rows["bf16"][-1] == "0.0 pts" and rows["bf16"][2] == "bf16"
    assert compression_frame([], "macro_f1", "macro F1").columns.tolist() == ["nothing to show yet"]


def test_numbers_keep_three_significant_digits_and_changes_read_in_points():
    assert [number(v) for v in (90.87, 4.123, 0.08312, 1234.4, 23.0, None, float("nan"))] == [
        "90.9",
        "4.12",
        "0.0831",
        "1234",
        "23",
        "–",
        "–",
    ]
    assert [points(v) for v in (0.004, -0.0123, 0.0, -0.0004, None)] == [
        "+0.4 pts",
        "-1.2 pts",
        "0.0 pts",
        "0.0 pts",
        "–",
    ]


def test_the_chart_has_one_labelled_point_per_variant():
    table, chart, note = exports_view([INT8, PRUNED, BF16], CLASSIFIER)
    assert chart.startswith("<svg") and chart.count("<circle") == 4 == len(table)
    labels = re.findall(r">([^<>]+)</text>", chart)
    assert {"original", "int8", "pruned 50%", "bf16"} <= set(labels)
    assert "macro F1 against p50 latency" in chart and "p50 latency for one text (ms)" in chart
    assert "48 rows" in note and "speed-up" in note
    # A point's tooltip gives its numbers; names with markup characters are escaped.
    assert "<title>int8: 3.21 ms, macro F1 0.916</title>" in chart
    odd = tradeoff_chart([("a<b>", 1.0, 0.5), ("nan", float("nan"), 0.4)], metric_name="F1 & co")
    assert odd.count("<circle") == 1 and "a&lt;b&gt;" in odd and "F1 &amp; co" in odd
    assert tradeoff_chart([], metric_name="macro F1") == ""
    assert exports_view([], CLASSIFIER) == (report_export.EMPTY_TABLE, "", report_export.NO_VARIANTS)


def job(**fields) -> Job:
    defaults = {
        "id": "0123456789abcdef",
        "owner": "alice",
        "kind": "train",
        "spec": SPEC,
        "queue": "playground",
        "status": SUCCEEDED,
        "created_at": datetime(2024, 1, 1, 12, 0),
    }
    return Job(**{**defaults, **fields})


def test_the_section_shows_for_finished_classifiers_and_taggers_only():
    assert offers_export(job()) is True
    assert offers_export(job(spec={**SPEC, "task": "token-classification"})) is True
    assert offers_export(job(spec={**SPEC, "task": "chat"})) is False  # a chat model has no export variants
    assert offers_export(job(kind="evaluate", spec={"model": "/runs/a/model", "data": "/x/test.csv"})) is False
    assert offers_export(job(kind="export", spec={"model": "/runs/a/model", "to": "int8"})) is False
    assert offers_export(job(status=RUNNING)) is False
    assert offers_export(None) is False


def test_every_variant_has_a_label_and_a_line_saying_what_it_is():
    assert [value for _, value in report_export.variant_choices()] == list(VARIANTS)
    assert set(report_export.ABOUT) == set(VARIANTS) == set(report_export.LABELS)
    about, slider = report_export.about_variant("pruned")
    assert about.startswith("**pruned**") and slider.visible is True
    assert report_export.about_variant("int8")[1].visible is False


def test_the_status_lists_exports_under_way_and_failures_not_made_good_since():
    def export(id_: str, to: str, status: str, minute: int, error: str | None = None) -> Job:
        spec = {"model": "/runs/a/model", "to": to}
        return job(id=id_ * 16, kind="export", spec=spec, status=status, created_at=datetime(2024, 1, 1, 12, minute))

    running = export("a", "onnx", RUNNING, 5)
    failed_int8 = export("b", "int8", FAILED, 4)
    done_int8 = export("c", "int8", SUCCEEDED, 3)
    old_failed = export("d", "bf16", FAILED, 2)
    done_bf16 = export("e", "bf16", SUCCEEDED, 6)
    lines = export_status(
        [done_bf16, running, failed_int8, done_int8, old_failed], {"int8": done_int8, "bf16": done_bf16}
    ).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("- **onnx**: job `aaaaaaaa`") and "running" in lines[0]
    assert "**int8**" in lines[1] and "failed" in lines[1] and "the table shows an earlier one" in lines[1]


# ---- the callbacks on a real job store -------------------------------------------------------------------------


def recorded(ctx: AppContext, kind: str, spec: dict, report_json: dict | None = None, status: str = SUCCEEDED) -> Job:
    """A job in the store as a worker leaves it, with its report.json."""
    store = ctx.jobs.store
    job_id = uuid.uuid4().hex[:16]
    store.create(job_id=job_id, owner="alice", kind=kind, spec=spec, queue=ctx.settings.queue, max_attempts=3)
    claimed = store.claim(job_id, task_id=f"{job_id}.1", host="test-host", name="test", pid=1)
    if status != RUNNING:
        store.finish(job_id, claimed.attempts, status, message="done", error="out of memory\nat step 3")
    found = ctx.jobs.get(job_id)
    if report_json is not None:
        Path(found.artifact_dir).mkdir(parents=True, exist_ok=True)
        (Path(found.artifact_dir) / "report.json").write_text(json.dumps(report_json), encoding="utf-8")
    return found


def test_the_section_lists_the_newest_export_of_each_variant_and_what_is_under_way(ctx: AppContext):
    trained = recorded(ctx, "train", SPEC, {"task": "text-classification", "metrics": ORIGINAL["metrics"]})
    source = str(ctx.model_dir(trained))
    recorded(ctx, "export", {"model": source, "to": "int8"}, PRUNED)  # an older int8, replaced by the next
    recorded(ctx, "export", {"model": source, "to": "int8"}, INT8)
    recorded(ctx, "export", {"model": source, "to": "onnx"}, status=RUNNING)
    recorded(ctx, "export", {"model": "/elsewhere/model", "to": "bf16"}, BF16)  # another run's variant

    section, table, chart, note, status = report_export.show_exports(ctx, trained.id, ALICE)
    assert section.visible is True
    assert table["Variant"].tolist() == ["original", "int8"] and table["Size (MB)"].tolist() == ["90.9", "23.5"]
    assert chart.count("<circle") == 2 and "48 rows" in note
    assert "**onnx**" in status and "running" in status

    chat = recorded(ctx, "train", {**SPEC, "task": "chat"}, {"task": "chat", "metrics": {"perplexity": 3.1}})
    assert report_export.show_exports(ctx, chat.id, ALICE)[0].visible is False
    assert report_export.show_exports(ctx, None, ALICE)[0].visible is False
    assert report_export.show_exports(ctx, trained.id, BOB)[0].visible is False  # not bob's run


def test_export_queues_a_job_and_refuses_what_cannot_be_exported(ctx: AppContext):
    trained = recorded(ctx, "train", SPEC, {"task": "text-classification", "metrics": ORIGINAL["metrics"]})
    message = report_export.start_export(ctx, trained.id, "pruned", 0.5, ALICE)
    queued_id = re.search(r"job `([0-9a-f]{16})`", message).group(1)
    assert "it appears below when done" in message
    queued = ctx.jobs.get(queued_id)
    assert queued.kind == "export" and queued.status == "queued"
    assert queued.spec["to"] == "pruned" and queued.spec["sparsity"] == 0.5
    assert Path(queued.spec["model"]) == ctx.model_dir(trained).resolve()
    int8 = ctx.jobs.get(re.search(r"`(\w{16})`", report_export.start_export(ctx, trained.id, "int8", 0.5, ALICE))[1])
    assert int8.spec["to"] == "int8" and int8.spec["sparsity"] == report_export.DEFAULT_SPARSITY

    chat = recorded(ctx, "train", {**SPEC, "task": "chat"})
    with pytest.raises(gr.Error, match="cannot be exported to 'int8'"):
        report_export.start_export(ctx, chat.id, "int8", None, ALICE)
    with pytest.raises(gr.Error, match="Pick a variant"):
        report_export.start_export(ctx, trained.id, None, None, ALICE)
    with pytest.raises(gr.Error, match="no job"):
        report_export.start_export(ctx, trained.id, "int8", None, BOB)
    with pytest.raises(gr.Error, match="sparsity"):
        report_export.start_export(ctx, trained.id, "pruned", 0.99, ALICE)


def test_the_report_picker_leaves_out_exports_and_opens_their_run_instead(ctx: AppContext):
    trained = recorded(ctx, "train", SPEC, {"task": "text-classification", "metrics": ORIGINAL["metrics"]})
    evaluation = recorded(ctx, "evaluate", {"model": str(ctx.model_dir(trained)), "data": "/x/test.csv"}, {})
    export = recorded(ctx, "export", {"model": str(ctx.model_dir(trained)), "to": "int8"}, INT8)
    picker, compare = report.refresh_choices(ctx, export.id, ALICE)
    assert [value for _, value in picker.choices] == [evaluation.id, trained.id]  # evaluations stay
    assert picker.value == trained.id and [value for _, value in compare.choices] == [evaluation.id, trained.id]


def test_the_playground_offers_the_original_and_the_variants_made(ctx: AppContext):
    trained = recorded(ctx, "train", SPEC, {"task": "text-classification", "metrics": ORIGINAL["metrics"]})
    recorded(ctx, "export", {"model": str(ctx.model_dir(trained)), "to": "int8"}, INT8)
    recorded(ctx, "export", {"model": str(ctx.model_dir(trained)), "to": "onnx"}, status=FAILED)
    picker = playground_variants.variant_choices(ctx, trained.id, "int8", ALICE)
    assert [value for _, value in picker.choices] == ["original", "int8"]
    assert picker.value == "int8" and picker.visible is True
    assert playground_variants.variant_choices(ctx, trained.id, "onnx", ALICE).value == "original"
    chat = recorded(ctx, "train", {**SPEC, "task": "chat"})
    assert playground_variants.variant_choices(ctx, chat.id, None, ALICE).visible is False
    assert playground_variants.variant_choices(ctx, trained.id, None, BOB).choices == [
        ("original (as trained)", "original")
    ]
    assert playground_variants.served_line("int8") == "Served by the **int8** variant."
    assert playground_variants.served_line("original").startswith("Served by the original model")
    assert playground_variants.served_line(None) == ""
    with pytest.raises(gr.Error, match="no 'bf16' variant"):
        playground.classify(ctx, trained.id, "Très bien, 很好", False, ALICE, "bf16")


def test_the_tabs_lay_out_with_the_new_parts(ctx: AppContext):
    with gr.Blocks() as blocks:
        report.build(ctx)
        playground.build(ctx)
    ids = {getattr(block, "elem_id", None) for block in blocks.blocks.values()}
    assert {"report-export", "report-export-table", "report-export-sparsity", "playground-variant"} <= ids
    assert {"playground-served", "playground-tag-served"} <= ids
