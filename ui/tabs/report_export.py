"""The Report tab's export part: make a deployable variant (bf16, int8, ONNX, pruned) of a finished training run as an
export job, and set the variants made so far beside the original: size, latency, throughput and test score."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from engine.export import DEFAULT_SPARSITY, VARIANTS, Timing
from engine.export.report import compression_table
from engine.spec import ExportSpec
from engine.tasks import Task, default_task, get_task
from ui.charts import tradeoff_chart
from ui.context import AppContext
from ui.tabs.common import bind, bounds, help_text, owner_of, user_error
from ui.views import EMPTY_TABLE, STATUS_WORDS
from worker.records import EXPORT, FAILED, QUEUED, RUNNING, SUCCEEDED, TRAIN, Job

PRUNED = "pruned"
DEFAULT_VARIANT = "int8"
SPARSITY_FIELD = ExportSpec.model_fields["sparsity"]
SPARSITY_STEP = 0.05
# How each variant reads in a picker, and the line under the picker that says what it is and where it runs.
LABELS = {
    "bf16": "bf16 (half-size weights)",
    "int8": "int8 (quantized, CPU)",
    "onnx": "onnx (ONNX Runtime)",
    "pruned": "pruned (weights set to zero)",
}
ABOUT = {
    "bf16": "**bf16**: the weights in bfloat16, half the size on disk; loads with transformers and is fastest where "
    "the CPU or GPU computes in bf16.",
    "int8": "**int8**: the Linear layers quantized to 8-bit integers and saved as TorchScript; smaller and usually "
    "faster, on the CPU only.",
    "onnx": "**onnx**: the model as an ONNX graph in fp32, for ONNX Runtime; it runs without PyTorch.",
    "pruned": "**pruned**: the smallest weights of the Linear layers set to zero; as large on disk as before, a "
    "start for sparse runtimes or a compressed download.",
}
INTRO = (
    "Make a copy of this model that is smaller or faster to serve. The export runs as a job: it writes the variant, "
    "then times it against the original on this run's test split, so you see what it costs in score."
)
NO_VARIANTS = "No variant yet: pick one above and press **Export**."
COLUMNS = ["Variant", "Runtime", "Runs in", "Size (MB)", "p50 latency (ms)", "Texts/s", "Speed-up"]


@dataclass
class ExportPart:
    """The export section and what show_exports fills, in its outputs' order."""

    section: gr.Accordion
    outputs: list


# ---- views ----------------------------------------------------------------------------------------------------------


def task_of(job: Job) -> Task:
    """The task of a job's spec; the default task for a spec that names none or one no longer registered."""
    try:
        return get_task((job.spec or {}).get("task")) if (job.spec or {}).get("task") else default_task()
    except ValueError:
        return default_task()


def offers_export(job: Job | None) -> bool:
    """True for a finished training run whose task can be exported (classifiers and taggers, not chat models)."""
    return job is not None and job.kind == TRAIN and job.status == SUCCEEDED and bool(task_of(job).exports)


def number(value: float | None) -> str:
    """A measurement to 3 significant digits (whole numbers from 1000 on): 90.9, 4.12, 0.0831, 1234."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def points(change: float | None) -> str:
    """A metric change in points: 0.004 -> '+0.4 pts'."""
    if change is None or not math.isfinite(change):
        return "–"
    shown = round(change * 100, 1)
    return "0.0 pts" if shown == 0 else f"{shown:+.1f} pts"


def compression_frame(rows: list[dict[str, Any]], metric: str, metric_name: str) -> pd.DataFrame:
    """compression_table's rows as a person reads them: the original first, then each variant with its speed-up
    over the original timed in the same run and its change of the headline metric in points."""
    if not rows:
        return EMPTY_TABLE
    name = metric_name[:1].upper() + metric_name[1:]
    records = []
    for index, row in enumerate(rows):
        score = row["metrics"].get(metric)
        records.append(
            [
                row["variant"],
                row["runtime"],
                row["runs in"],
                number(row["size_mb"]),
                number(row["latency_p50_ms"]),
                number(row["texts_per_second"]),
                "1× (reference)" if index == 0 else f"{number(row['speedup'])}×",
                "–" if score is None else f"{score:.3f}",
                "reference" if index == 0 else points(row["metric_change"].get(metric)),
            ]
        )
    return pd.DataFrame(records, columns=[*COLUMNS, name, f"{name} change"])


def measured_note(reports: list[dict[str, Any]]) -> str:
    """How the table was measured, in two sentences a person can check it by."""
    if not reports:
        return NO_VARIANTS
    timing = Timing()
    return (
        "Each export job loaded the original (fp32 on the CPU, as trained) and its variant in one worker process "
        f"and timed them in turns, {timing.rounds} rounds, so that a busy machine slows both alike. **Size** is the "
        "model folder on disk, **p50 latency** the median time to answer one text, **texts/s** the best throughput "
        f"on batches of {timing.batch_texts} texts, **speed-up** the variant's texts/s over the original's from the "
        f"same job. Scores are on this run's test split ({reports[0].get('test_rows', '?')} rows); +1 pt is +0.01. "
        "The original's row is as the newest export measured it."
    )


def exports_view(reports: list[dict[str, Any]], task: Task) -> tuple[pd.DataFrame, str, str]:
    """(table, metric-against-latency chart, how it was measured) of a run's export reports, newest first."""
    rows = compression_table(reports)
    metric = task.headline_metric
    chart = tradeoff_chart(
        [(row["variant"], row["latency_p50_ms"], row["metrics"].get(metric, math.nan)) for row in rows],
        metric_name=task.headline_name,
    )
    return compression_frame(rows, metric, task.headline_name), chart, measured_note(reports)


def export_status(exports: list[Job], done: dict[str, Job]) -> str:
    """Exports under way, and a variant's export that failed where it is the newest to have ended, one line each."""
    lines: list[str] = []
    ended: set[str] = set()  # variants whose newest ended export has been read: older failures are history
    for job in exports:  # newest first
        variant = str((job.spec or {}).get("to"))
        if job.status in (QUEUED, RUNNING):
            phase = f" ({job.phase})" if job.status == RUNNING and job.phase else ""
            lines.append(f"- **{variant}**: job `{job.id[:8]}` {STATUS_WORDS[job.status]}{phase}")
            continue
        if job.status == FAILED and variant not in ended:
            reason = (job.error or "no reason recorded").splitlines()[0][:160]
            earlier = "; the table shows an earlier one" if variant in done else ""
            lines.append(f"- **{variant}**: job `{job.id[:8]}` {STATUS_WORDS[FAILED]}: {reason}{earlier}")
        ended.add(variant)
    return "\n".join(lines)


def variant_choices() -> list[tuple[str, str]]:
    """(label, value) of every variant engine.export makes."""
    return [(LABELS.get(name, name), name) for name in VARIANTS]


# ---- callbacks ------------------------------------------------------------------------------------------------------


def exports_of(ctx: AppContext, job: Job) -> list[Job]:
    """Every export job (any status) of a training run's model, newest first."""
    source = ctx.model_dir(job).resolve()
    return [
        export
        for export in ctx.jobs.list_jobs(job.owner)
        if export.kind == EXPORT and Path(str((export.spec or {}).get("model", ""))).resolve() == source
    ]


def source_run(ctx: AppContext, job_id: str | None, jobs: list[Job]) -> str | None:
    """The training run an export job (among `jobs`) was made from; None when `job_id` is no export job there."""
    export = next((job for job in jobs if job.id == job_id and job.kind == EXPORT), None)
    if export is None:
        return None
    model = Path(str((export.spec or {}).get("model", ""))).resolve()
    return next((job.id for job in jobs if job.kind == TRAIN and ctx.model_dir(job).resolve() == model), None)


def show_exports(ctx: AppContext, job_id: str | None, request: gr.Request):
    """The export section of a run: shown for a finished training run whose task can be exported, with a row per
    variant made so far, the chart and what is under way."""
    owner = owner_of(ctx, request)
    try:
        job = ctx.job(job_id, owner) if job_id else None
    except ValueError:
        job = None
    if not offers_export(job):
        return gr.Accordion(visible=False), EMPTY_TABLE, "", "", ""
    done = ctx.variants(job)
    reports = []
    for export in done.values():
        try:
            reports.append(ctx.report(export.id, owner))
        except ValueError:
            continue  # its files were removed; the other variants still compare
    table, chart, note = exports_view(reports, task_of(job))
    status = ctx.public_text(export_status(exports_of(ctx, job), done))  # a failure's message without server paths
    return gr.Accordion(visible=True), table, chart, note, status


def start_export(
    ctx: AppContext, job_id: str | None, variant: str | None, sparsity: float | None, request: gr.Request
) -> str:
    """Queue an export job of the picked run to the picked variant (pruned: at the picked sparsity)."""
    owner = owner_of(ctx, request)
    if not variant:
        raise user_error("Pick a variant to export to first.")
    try:
        job = ctx.finished_model(job_id, owner)
        offered = task_of(job).exports
        if variant not in offered:
            raise ValueError(f"a {task_of(job).name} model cannot be exported to {variant!r}; offered: {offered}")
        raw: dict[str, Any] = {"model": job.id, "to": variant}
        if variant == PRUNED:  # the spec refuses a sparsity for the other variants
            raw["sparsity"] = float(DEFAULT_SPARSITY if sparsity is None else sparsity)
        submission = ctx.submit(raw, owner)
    except ValueError as exc:
        raise user_error(ctx.public_text(str(exc))) from exc
    return f"✓ Queued export job `{submission.job_id}`; it appears below when done (press ↻ to look)."


def about_variant(variant: str | None):
    """The picked variant's line, and the sparsity slider, shown for the pruned variant only."""
    return ABOUT.get(variant or "", ""), gr.Slider(visible=variant == PRUNED)


# ---- layout ---------------------------------------------------------------------------------------------------------


def build(ctx: AppContext, job: gr.Dropdown) -> ExportPart:
    """Lay out the part (hidden until a finished run that can be exported is picked) and wire it to the run picker."""
    low, high = bounds(SPARSITY_FIELD, SPARSITY_STEP)
    with gr.Accordion("Export for deployment", open=False, visible=False, elem_id="report-export") as section:
        gr.Markdown(INTRO, elem_classes=["pg-help"])
        with gr.Row(equal_height=True):
            variant = gr.Dropdown(
                label="Variant", choices=variant_choices(), value=DEFAULT_VARIANT, scale=2, elem_id="report-export-to"
            )
            sparsity = gr.Slider(
                low,
                high,
                value=DEFAULT_SPARSITY,
                step=SPARSITY_STEP,
                label="Sparsity: share of the weights set to zero",
                info=help_text(SPARSITY_FIELD),
                visible=False,
                scale=2,
                elem_id="report-export-sparsity",
            )
        about = gr.Markdown(ABOUT[DEFAULT_VARIANT], elem_id="report-export-about")
        with gr.Row():
            start = gr.Button("Export", variant="primary", scale=0, min_width=160, elem_id="report-export-start")
            refresh = gr.Button("↻ Refresh the table", scale=0, min_width=220, elem_id="report-export-refresh")
        message = gr.Markdown(elem_id="report-export-message")
        status = gr.Markdown(elem_id="report-export-status")
        table = gr.Dataframe(
            value=EMPTY_TABLE,
            label="The original and its variants, each measured beside the original in its export job",
            interactive=False,
            wrap=True,
            elem_id="report-export-table",
        )
        chart = gr.HTML(elem_id="report-export-chart")
        how = gr.Markdown(NO_VARIANTS, elem_classes=["pg-help"], elem_id="report-export-how")
    outputs = [section, table, chart, how, status]
    shown = bind(ctx, show_exports)
    job.change(shown, [job], outputs, api_name="show_exports")
    job.change(lambda: "", None, [message], api_visibility="private")  # a queued message belongs to the run it named
    refresh.click(shown, [job], outputs, api_visibility="private")
    variant.change(about_variant, [variant], [about, sparsity], api_visibility="private")
    start.click(bind(ctx, start_export), [job, variant, sparsity], [message], api_name="export_model").then(
        shown, [job], outputs, api_visibility="private"
    )
    return ExportPart(section, outputs)
