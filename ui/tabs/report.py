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
from ui.task_views import (
    chat_headline_markdown,
    error_kinds_markdown,
    generations_frame,
    ner_errors_frame,
    ner_headline_markdown,
    report_score,
)
from ui.views import comparison_frame, confusion_html, errors_frame, headline_markdown, job_choice, per_class_frame

NO_REPORT = "Pick a finished run above. Runs appear here once their job has finished."
ERRORS_LABEL = {
    "text-classification": "Most confident mistakes (what the model got wrong while being sure)",
    "token-classification": "Entity errors on the test split, with the sentence they come from",
}
HOW_TO_READ = {
    "text-classification": (
        "**How to read this.** *Precision*: when the model says a label, how often it is right. *Recall*: of the "
        "test rows that really have the label, how many it finds. *F1* combines both (1.0 is perfect). *Support*: "
        "test rows with that label. The *baseline* is a simple word-counting model (TF-IDF + logistic regression) "
        "trained on the same rows: a fine-tuned model should beat it."
    ),
    "token-classification": (
        "**How to read this.** Scores are per *entity*: a name counts as found only with exactly its words and its "
        "type. *Micro F1* pools all entities; *macro F1* averages the types, so rare types weigh as much as common "
        "ones. *Token accuracy* counts single words (easy to get high: most words are no entity). *Support*: test "
        "entities of that type. In the matrix, column O is a missed entity and row O a spurious one. The *baseline* "
        "tags each word with the tag it had most often in training."
    ),
    "chat": (
        "**How to read this.** *Loss* and *perplexity* measure how well the model predicts the real answers of "
        "held-out conversations (lower is better). Compare the fine-tuned model with the base model it started "
        "from, then read the answers side by side: numbers say little about tone and facts."
    ),
}


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
    with gr.Row(equal_height=False) as scores_row:
        per_class = gr.Dataframe(
            label="Per label: precision, recall, F1 and support (number of test rows)",
            interactive=False,
            elem_id="report-per-class",
            scale=3,
        )
        confusion = gr.HTML(label="Confusion matrix", elem_id="report-confusion")
    how_to_read = gr.Markdown(HOW_TO_READ["text-classification"], elem_classes=["pg-help"], elem_id="report-help")
    with gr.Group(visible=False, elem_id="report-ner") as ner_section:
        error_kinds = gr.Markdown(elem_id="report-error-kinds")
    with gr.Group(visible=False, elem_id="report-chat") as chat_section:
        generations = gr.Dataframe(
            label="Held-out prompts: the reference answer, the base model's and the fine-tuned model's",
            interactive=False,
            wrap=True,
            max_height=520,
            column_widths=["25%", "25%", "25%", "25%"],
            elem_id="report-generations",
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
            value=_chart([]),
            x="run",
            y="score",
            title="Headline score by run: macro F1 (classifiers), micro F1 (taggers), perplexity (chat)",
            height=220,
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
        task = report.get("task")
        if task == "token-classification":
            views = ner_headline_markdown(report, record), ner_errors_frame(report)
        elif task == "chat":
            views = chat_headline_markdown(report, record), pd.DataFrame()
        else:
            views = headline_markdown(report, record), errors_frame(report)
        per_class = per_class_frame(report) if task != "chat" else pd.DataFrame()
        confusion = confusion_html(report) if task != "chat" else ""
        return views[0], per_class, confusion, views[1], downloads, None

    def show_task_parts(job_id: str | None, request: gr.Request):
        """What only some tasks have: error kinds (taggers), generations side by side (chat), and the help text."""
        owner = owner_of(ctx, request)
        task, report = "text-classification", {}
        if job_id:
            try:
                report = ctx.report(job_id, owner)
                task = report.get("task") or task
            except ValueError:
                report = {}
        return (
            gr.Row(visible=task != "chat"),
            HOW_TO_READ.get(task, ""),
            gr.Group(visible=task == "token-classification"),
            error_kinds_markdown(report) if task == "token-classification" else "",
            gr.Group(visible=task == "chat"),
            generations_frame(report) if task == "chat" else pd.DataFrame(),
            gr.Dataframe(visible=task != "chat", label=ERRORS_LABEL.get(task, ERRORS_LABEL["text-classification"])),
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
    job.change(
        show_task_parts,
        [job],
        [scores_row, how_to_read, ner_section, error_kinds, chat_section, generations, errors],
        api_name="show_report_parts",
    )
    zip_button.click(download_model, [job], [model_zip], api_name="download_model")
    compare_button.click(compare_runs, [compare], [comparison, comparison_chart], api_name="compare_runs")
    return ReportTab(job, compare, refresh_choices)


def _chart(runs: list) -> pd.DataFrame:
    scores = [report_score(report)[1] for _, report in runs]
    return pd.DataFrame(
        {
            "run": pd.Series([job.id[:8] for job, _ in runs], dtype="str"),
            "score": pd.Series([float("nan") if v is None else v for v in scores], dtype="float64"),
        }
    )
