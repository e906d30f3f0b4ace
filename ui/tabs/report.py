"""Report tab: metrics, per-class scores, confusion matrix, baseline, mistakes, exports, downloads and comparisons."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from engine.markdown import recipe_lines
from engine.report_views import round3
from engine.tasks import ReportView, all_tasks, default_task, get_task
from ui.charts import search_chart
from ui.context import AppContext
from ui.tabs import report_export, report_techniques
from ui.tabs.common import bind, copy_for_download, download_dir, owned_report, owner_of, user_error
from ui.views import EMPTY_TABLE, comparison_frame, job_choice, report_title
from worker.records import EXPORT

NO_REPORT = "Pick a finished run above. Runs appear here once their job has finished."
ERRORS_LABEL = "Most confident mistakes (what the model got wrong while being sure)"
REPORT_FILES = ("report.json", "report.md")


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


# ---- callbacks ------------------------------------------------------------------------------------------------------


def refresh_choices(ctx: AppContext, current: str | None, request: gr.Request):
    """Finished runs of the owner for both pickers; keeps the current pick. Export jobs are not listed: their results
    are in the Export section of the run they were made from, which an export job picked elsewhere opens instead."""
    owner = owner_of(ctx, request)
    finished = ctx.finished_jobs(owner)
    current = report_export.source_run(ctx, current, finished) or current
    choices = [job_choice(j) for j in finished if j.kind != EXPORT]
    value = current if current in {c[1] for c in choices} else (choices[0][1] if choices else None)
    return gr.Dropdown(choices=choices, value=value), gr.Dropdown(choices=choices)


def show_report(ctx: AppContext, job_id: str | None, request: gr.Request):
    """Headline, per-class table, confusion matrix, confident errors and report files of a finished run."""
    owner = owner_of(ctx, request)
    if not job_id:
        return NO_REPORT, EMPTY_TABLE, "", EMPTY_TABLE, None, None
    try:
        record = ctx.job(job_id, owner)
        report = ctx.report(record.id, owner)
    except ValueError as exc:
        raise user_error(str(exc)) from exc
    folder = Path(record.artifact_dir or "")
    downloads = [
        copy_for_download(folder / name, f"{Path(name).stem}-{record.id[:8]}{Path(name).suffix}")
        for name in REPORT_FILES
        if (folder / name).is_file()
    ]
    view = report_view(report, record)
    per_class = view.per_class if view.per_class is not None else EMPTY_TABLE
    errors = view.errors if view.errors is not None else EMPTY_TABLE
    return view.headline, per_class, view.confusion or "", errors, downloads, None


def show_task_parts(ctx: AppContext, job_id: str | None, request: gr.Request):
    """What only some tasks have: error kinds (taggers), generations side by side (chat), and the help text."""
    report = owned_report(ctx, job_id, request)
    view = report_view(report, None) if report else None
    has = {
        "scores": view is None or view.per_class is not None,
        "details": view is not None and view.details is not None,
        "generations": view is not None and view.generations is not None,
        "errors": view is None or view.errors is not None,
    }
    return (
        gr.Row(visible=has["scores"]),
        view.how_to_read if view else default_task().how_to_read,
        gr.Group(visible=has["details"]),
        (view.details or "") if view else "",
        gr.Group(visible=has["generations"]),
        view.generations if has["generations"] else EMPTY_TABLE,
        gr.Dataframe(visible=has["errors"], label=(view.errors_label if view else "") or ERRORS_LABEL),
    )


def show_recipe(ctx: AppContext, job_id: str | None, request: gr.Request):
    """How the model was trained beyond the basic knobs: the weights trained, where early stopping stopped, and a
    learning-rate search's trials (table and score-against-learning-rate chart)."""
    owner = owner_of(ctx, request)
    train: dict = {}
    if job_id:
        try:
            train = ctx.report(job_id, owner).get("train") or {}
        except ValueError:
            train = {}
    lines = recipe_lines(train) if train else []
    return gr.Group(visible=bool(lines)), "\n".join(lines), search_chart(train.get("search"))


def download_model(ctx: AppContext, job_id: str | None, request: gr.Request):
    """The fine-tuned model folder of a finished training run as a zip file."""
    owner = owner_of(ctx, request)
    try:
        record = ctx.finished_model(job_id, owner)
    except ValueError as exc:
        raise user_error(str(exc)) from exc
    folder = ctx.local_model_dir(record)
    if not folder.is_dir():
        raise user_error(f"the model files of job {record.id} are missing; train it again")
    return str(zip_folder(folder, download_dir() / f"model-{record.id[:8]}.zip"))


def compare_runs(ctx: AppContext, job_ids: list[str] | None, request: gr.Request):
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


# ---- layout ---------------------------------------------------------------------------------------------------------


def build(ctx: AppContext) -> ReportTab:
    """Lay out the Report tab and wire its events."""
    with gr.Row():
        job = gr.Dropdown(
            label="Finished run", choices=[], value=None, allow_custom_value=True, scale=4, elem_id="report-job"
        )
        refresh = gr.Button("↻", size="sm", scale=0, min_width=40, elem_id="report-refresh")
    techniques = report_techniques.build()  # first: what the techniques bought, when the run used some
    headline = gr.Markdown(NO_REPORT, elem_id="report-headline")
    scores_row, per_class, confusion = _scores_section()
    how_to_read = gr.Markdown(default_task().how_to_read, elem_classes=["pg-help"], elem_id="report-help")
    ner_section, error_kinds, chat_section, generations = _task_sections()
    errors = gr.Dataframe(
        label=ERRORS_LABEL,
        interactive=False,
        wrap=True,
        max_height=320,
        elem_id="report-errors",
    )
    with gr.Group(visible=False, elem_id="report-recipe") as recipe_section:
        recipe = gr.Markdown(elem_id="report-recipe-text")
        recipe_chart = gr.HTML(elem_id="report-search-chart")
    report_export.build(ctx, job)  # make a deployable variant, and compare those made so far
    files, zip_button, model_zip = _downloads_section()
    compare, compare_button, comparison, comparison_chart = _compare_section()

    refresh_bound = bind(ctx, refresh_choices)
    refresh.click(refresh_bound, [job], [job, compare], api_name="list_reports")
    job.change(
        bind(ctx, show_report),
        [job],
        [headline, per_class, confusion, errors, files, model_zip],
        api_name="show_report",
    )
    job.change(
        bind(ctx, show_task_parts),
        [job],
        [scores_row, how_to_read, ner_section, error_kinds, chat_section, generations, errors],
        api_name="show_report_parts",
    )
    job.change(bind(ctx, show_recipe), [job], [recipe_section, recipe, recipe_chart], api_name="show_report_recipe")
    show_techniques = bind(ctx, report_techniques.show_techniques)
    job.change(show_techniques, [job], techniques.outputs, api_name="show_report_techniques")
    zip_button.click(bind(ctx, download_model), [job], [model_zip], api_name="download_model")
    compare_button.click(bind(ctx, compare_runs), [compare], [comparison, comparison_chart], api_name="compare_runs")
    return ReportTab(job, compare, refresh_bound)


def _scores_section() -> tuple[gr.Row, gr.Dataframe, gr.HTML]:
    """The per-label table beside the confusion matrix (hidden for tasks without labels)."""
    with gr.Row(equal_height=False) as scores_row:
        per_class = gr.Dataframe(
            label="Per label: precision, recall, F1 and support (number of test rows)",
            interactive=False,
            elem_id="report-per-class",
            scale=3,
        )
        confusion = gr.HTML(label="Confusion matrix", elem_id="report-confusion")
    return scores_row, per_class, confusion


def _task_sections() -> tuple[gr.Group, gr.Markdown, gr.Group, gr.Dataframe]:
    """What only some tasks show: a tagger's error kinds, a chat model's generations."""
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
    return ner_section, error_kinds, chat_section, generations


def _downloads_section() -> tuple[gr.File, gr.Button, gr.File]:
    """The report files, and a button that zips the model for download."""
    with gr.Row():
        files = gr.File(label="Report files", file_count="multiple", interactive=False, elem_id="report-files")
        with gr.Column():
            zip_button = gr.Button("Prepare the model as a .zip download", elem_id="report-zip")
            model_zip = gr.File(
                label="Model (.zip, loads with transformers)", interactive=False, elem_id="report-model"
            )
    return files, zip_button, model_zip


def _compare_section() -> tuple[gr.Dropdown, gr.Button, gr.Dataframe, gr.BarPlot]:
    """Runs picked side by side: a table of their settings and scores, and a chart of their headline scores."""
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
            title="Headline score by run: "
            + ", ".join(f"{task.headline_name} ({task.short_title.lower()})" for task in all_tasks()),
            height=220,
        )
    return compare, compare_button, comparison, comparison_chart


# ---- helpers --------------------------------------------------------------------------------------------------------


def report_view(report: dict, job) -> ReportView:
    """The report's task view; a report of a task no longer registered reads as the default task's."""
    try:
        task = get_task(report.get("task"))
    except ValueError:
        task = default_task()
    return task.report_view(report, report_title(report, job))


def headline_score(report: dict) -> float | None:
    """The one number runs of a task are compared by (its headline metric)."""
    try:
        metric = get_task(report.get("task")).headline_metric
    except ValueError:
        return None
    return round3((report.get("metrics") or {}).get(metric))


def _chart(runs: list) -> pd.DataFrame:
    scores = [headline_score(report) for _, report in runs]
    return pd.DataFrame(
        {
            "run": pd.Series([job.id[:8] for job, _ in runs], dtype="str"),
            "score": pd.Series([float("nan") if v is None else v for v in scores], dtype="float64"),
        }
    )
