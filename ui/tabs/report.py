"""Report tab: headline metrics, per-class scores, confusion matrix, baseline, mistakes, downloads, and comparisons."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from ui.context import AppContext
from ui.tabs.common import copy_for_download, download_dir, owner_of, user_error
from ui.views import comparison_frame, confusion_html, errors_frame, headline_markdown, job_choice, per_class_frame

NO_REPORT = "Pick a finished run above. Runs appear here once their job has finished."


@dataclass
class ReportTab:
    """The run picker (other tabs open a report by setting it) and how to refresh its choices."""

    job: gr.Dropdown
    compare: gr.Dropdown
    refresh_choices: Callable[..., tuple]  # (current, request) -> (job picker, compare picker)


def zip_folder(folder: Path, target: Path) -> Path:
    """Zip a model folder (files at the top of the archive, inside a folder named after the zip)."""
    root = target.stem
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, f"{root}/{file.relative_to(folder)}")
    return target


def build(ctx: AppContext) -> ReportTab:
    """Lay out the Report tab and wire its events."""
    with gr.Row():
        job = gr.Dropdown(
            label="Finished run", choices=[], value=None, allow_custom_value=True, scale=4, elem_id="report-job"
        )
        refresh = gr.Button("↻", size="sm", scale=0, min_width=40, elem_id="report-refresh")
    headline = gr.Markdown(NO_REPORT, elem_id="report-headline")
    with gr.Row(equal_height=False):
        per_class = gr.Dataframe(
            label="Per label: precision, recall, F1 and support (number of test rows)",
            interactive=False,
            elem_id="report-per-class",
            scale=3,
        )
        confusion = gr.HTML(label="Confusion matrix", elem_id="report-confusion")
    gr.Markdown(
        "**How to read this.** *Precision*: when the model says a label, how often it is right. *Recall*: of the "
        "test rows that really have the label, how many it finds. *F1* combines both (1.0 is perfect). *Support*: "
        "test rows with that label. The *baseline* is a simple word-counting model (TF-IDF + logistic regression) "
        "trained on the same rows: a fine-tuned model should beat it.",
        elem_classes=["pg-help"],
    )
    errors = gr.Dataframe(
        label="Most confident mistakes (what the model got wrong while being sure)",
        interactive=False,
        wrap=True,
        max_height=320,
        elem_id="report-errors",
    )
    with gr.Row():
        files = gr.File(label="Report files", file_count="multiple", interactive=False, elem_id="report-files")
        with gr.Column():
            zip_button = gr.Button("Prepare the model as a .zip download", elem_id="report-zip")
            model_zip = gr.File(
                label="Model (.zip, loads with transformers)", interactive=False, elem_id="report-model"
            )
    with gr.Accordion("Compare runs side by side", open=False, elem_id="report-compare-section"):
        with gr.Row():
            compare = gr.Dropdown(
                label="Runs to compare (two or more)",
                choices=[],
                multiselect=True,
                allow_custom_value=True,
                scale=4,
                elem_id="report-compare-runs",
            )
            compare_button = gr.Button("Compare", scale=0, min_width=120, elem_id="report-compare")
        comparison = gr.Dataframe(interactive=False, wrap=True, elem_id="report-comparison")
        comparison_chart = gr.BarPlot(
            value=_chart([]), x="run", y="macro F1", title="Macro F1 by run", y_lim=[0, 1], height=220
        )

    def refresh_choices(current: str | None, request: gr.Request):
        """Finished runs of the owner for both pickers; keeps the current pick."""
        owner = owner_of(ctx, request)
        choices = [job_choice(j) for j in ctx.finished_jobs(owner)]
        value = current if current in {c[1] for c in choices} else (choices[0][1] if choices else None)
        return gr.Dropdown(choices=choices, value=value), gr.Dropdown(choices=choices)

    def show_report(job_id: str | None, request: gr.Request):
        """Headline, per-class table, confusion matrix, confident errors and report files of a finished run."""
        owner = owner_of(ctx, request)
        if not job_id:
            return NO_REPORT, pd.DataFrame(), "", pd.DataFrame(), None, None
        try:
            record = ctx.job(job_id, owner)
            report = ctx.report(record.id, owner)
        except ValueError as exc:
            raise user_error(str(exc)) from exc
        folder = Path(record.artifact_dir or "")
        downloads = [
            copy_for_download(folder / name, f"{Path(name).stem}-{record.id[:8]}{Path(name).suffix}")
            for name in ("report.json", "report.md")
            if (folder / name).is_file()
        ]
        return (
            headline_markdown(report, record),
            per_class_frame(report),
            confusion_html(report),
            errors_frame(report),
            downloads,
            None,
        )

    def download_model(job_id: str | None, request: gr.Request):
        """The fine-tuned model folder of a finished training run as a zip file."""
        owner = owner_of(ctx, request)
        try:
            record = ctx.finished_model(job_id, owner)
        except ValueError as exc:
            raise user_error(str(exc)) from exc
        folder = ctx.model_dir(record)
        if not folder.is_dir():
            raise user_error(f"the model files of job {record.id} are missing; train it again")
        return str(zip_folder(folder, download_dir() / f"model-{record.id[:8]}.zip"))

    def compare_runs(job_ids: list[str] | None, request: gr.Request):
        """One column per run: settings, headline scores and per-label F1, plus a macro-F1 chart."""
        owner = owner_of(ctx, request)
        runs = []
        for job_id in job_ids or []:
            try:
                record = ctx.job(job_id, owner)
                runs.append((record, ctx.report(record.id, owner)))
            except ValueError as exc:
                raise user_error(str(exc)) from exc
        if len(runs) < 2:
            gr.Warning("Pick at least two finished runs to compare.")
        return comparison_frame(runs), _chart(runs)

    refresh.click(refresh_choices, [job], [job, compare], api_name="list_reports")
    job.change(show_report, [job], [headline, per_class, confusion, errors, files, model_zip], api_name="show_report")
    zip_button.click(download_model, [job], [model_zip], api_name="download_model")
    compare_button.click(compare_runs, [compare], [comparison, comparison_chart], api_name="compare_runs")
    return ReportTab(job, compare, refresh_choices)


def _chart(runs: list) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run": pd.Series([job.id[:8] for job, _ in runs], dtype="str"),
            "macro F1": pd.Series([round(rep["metrics"]["macro_f1"], 3) for _, rep in runs], dtype="float64"),
        }
    )
