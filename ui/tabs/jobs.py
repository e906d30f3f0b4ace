"""Jobs tab: every job of the user, live (a timer re-reads the job store), with cancel, delete and
evaluate-on-another-file.

An admin sees and may cancel or delete everyone's jobs; the table then has an Owner column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from engine.errors import DataError, ModelNotFoundError
from ui.charts import training_curves_html
from ui.context import AppContext
from ui.tabs.common import bind, owner_of, user_error
from ui.tabs.data import FILE_TYPES
from ui.techniques import used_in
from ui.views import JOB_COLUMNS, error_markdown, job_choice, job_markdown, jobs_frame, progress_html
from worker.api import JobNotFoundError
from worker.quotas import QuotaError
from worker.records import SUCCEEDED, TRAIN, Job

REFRESH_SECONDS = 2.0
LOG_LINES = 40
LIST_LIMIT = 100
OWNER_COLUMN = "Owner"
NO_JOB = "No job selected. Start one in the **Train** tab, or pick one above."
# What the timer's tick returns: the listing (3), the picked job's status (7), its delete button and the signature.
TICK_OUTPUTS = 12


@dataclass
class JobsTab:
    """The picked job (other tabs select a job by setting it), the page's live timer, and links to other tabs."""

    job: gr.Dropdown
    table: gr.Dataframe
    timer: gr.Timer
    remembered_job: gr.BrowserState
    open_report: gr.Button
    open_playground: gr.Button
    list_jobs: Callable[..., tuple]  # (request) -> (table, job picker, ids)
    listing: list  # the outputs of list_jobs


# ---- callbacks ------------------------------------------------------------------------------------------------------


def job_listing(jobs: list[Job], viewer: str | None = None) -> tuple:
    """Jobs as the table, the picker and the ids behind the table's rows; an Owner column once the list holds
    someone else's jobs than the `viewer`'s (an admin's list)."""
    table = jobs_frame(jobs, technique_comparisons(jobs))
    if viewer is not None and any(job.owner != viewer for job in jobs):
        table.insert(1, OWNER_COLUMN, [job.owner for job in jobs])
    return table, gr.Dropdown(choices=[job_choice(j) for j in jobs]), [j.id for j in jobs]


def listed_jobs(ctx: AppContext, owner: str) -> list[Job]:
    """The jobs the list shows: the owner's own, or an admin's view of everyone's."""
    return ctx.jobs.list_jobs(None if ctx.is_admin(owner) else owner, limit=LIST_LIMIT)


def technique_comparisons(jobs: list[Job]) -> dict[str, dict[str, Any]]:
    """For each finished job that used techniques, its comparison with the plain recipe (what the list says they
    bought), as the worker recorded it from the report; a job without one is left out."""
    found = {}
    for job in jobs:
        comparison = (job.summary or {}).get("comparison")
        if job.status == SUCCEEDED and used_in(job.spec) and isinstance(comparison, dict):
            found[job.id] = comparison
    return found


def list_jobs(ctx: AppContext, request: gr.Request):
    """The owner's jobs as a table, and the same jobs for the picker."""
    owner = owner_of(ctx, request)
    return job_listing(listed_jobs(ctx, owner), owner)


def job_status(ctx: AppContext, job_id: str | None, request: gr.Request):
    """One job: heading (error and hint), progress bar, loss curve, log tail, and which buttons apply."""
    owner = owner_of(ctx, request)
    if not job_id:
        hidden = gr.Button(visible=False)
        return NO_JOB, "", training_curves_html([]), "", hidden, hidden, hidden
    try:
        record = ctx.managed_job(job_id, owner)  # an admin follows anyone's job
    except JobNotFoundError as exc:
        raise user_error(str(exc)) from exc
    curve_data = training_curves_html(
        ctx.jobs.history(record.id, owner=record.owner), record.total_steps, (record.spec or {}).get("task")
    )
    tail = ctx.jobs.log_tail(record.id, LOG_LINES, owner=record.owner)
    can_cancel = not record.finished and not record.cancel_requested
    usable = record.status == SUCCEEDED and record.owner == owner  # reports and models stay their owner's
    return (
        job_markdown(record),
        progress_html(record),
        curve_data,
        tail,
        gr.Button(visible=can_cancel),
        gr.Button(visible=usable),
        gr.Button(visible=usable and record.kind == TRAIN),
    )


def tick(ctx: AppContext, job_id: str | None, last_seen: str, request: gr.Request):
    """Timer: re-read the store; outputs that did not change are skipped, so nothing flickers."""
    owner = owner_of(ctx, request)
    jobs = listed_jobs(ctx, owner)
    picked = next((j for j in jobs if j.id == job_id), None)
    signature = repr(
        [(j.id, j.status, j.step, j.position, j.cancel_requested) for j in jobs]
        + [job_id, picked.heartbeat_at if picked else None]
    )
    if signature == last_seen:
        return (gr.skip(),) * TICK_OUTPUTS
    return *job_listing(jobs, owner), *job_status(ctx, job_id, request), deletable(ctx, job_id, request), signature


def pick_row(row_ids: list[str], evt: gr.SelectData):
    """The id of the job in the clicked table row (nothing changes for a click outside the rows)."""
    row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
    return row_ids[row] if isinstance(row, int) and 0 <= row < len(row_ids) else gr.skip()


def cancel_job(ctx: AppContext, job_id: str | None, request: gr.Request):
    """Cancel the job: a waiting one at once, a running one at its next training step."""
    owner = owner_of(ctx, request)
    try:
        record = ctx.managed_job(job_id, owner)  # an admin may cancel anyone's job
        record = ctx.jobs.cancel(record.id, owner=record.owner)
    except JobNotFoundError as exc:
        raise user_error(str(exc)) from exc
    if record.finished and record.status != "cancelled":
        gr.Info(f"job {record.id} had already ended ({record.status})")
    return job_status(ctx, record.id, request)


def deletable(ctx: AppContext, job_id: str | None, request: gr.Request) -> gr.Button:
    """The delete button, shown for a finished job the user may manage (their own; an admin: anyone's)."""
    owner = owner_of(ctx, request)
    try:
        record = ctx.managed_job(job_id, owner) if job_id else None
    except JobNotFoundError:
        record = None  # deleted meanwhile, or not theirs: nothing to offer
    return gr.Button(visible=record is not None and record.finished)


def delete_job(ctx: AppContext, job_id: str | None, request: gr.Request):
    """Delete a finished job with its folder (model, report, log); refused with the reason while another job needs
    it or its exported variants exist. Returns the listing and the (now empty) pick."""
    owner = owner_of(ctx, request)
    try:
        record = ctx.managed_job(job_id, owner)  # an admin may delete anyone's job
        ctx.jobs.delete(record.id, owner=record.owner)  # the one deletion REST and the CLI use too
    except ValueError as exc:  # JobNotFoundError is one
        raise user_error(ctx.public_text(str(exc))) from exc
    gr.Info(f"job {record.id} deleted with its folder")
    table, picker, ids = list_jobs(ctx, request)
    return table, gr.Dropdown(choices=picker.choices, value=None), ids, *job_status(ctx, None, request)


def eval_upload(ctx: AppContext, path: str | None, request: gr.Request):
    """Keep the evaluation file as one of the owner's datasets and guess its columns."""
    owner = owner_of(ctx, request)
    if not path:
        return "", gr.Dropdown(choices=[]), gr.Dropdown(choices=[]), ""
    try:
        dataset, table = ctx.datasets.register(owner, path)
    except DataError as exc:
        heading = "Not kept: over your disk quota" if isinstance(exc, QuotaError) else "Can't read it"
        return "", gr.Dropdown(choices=[]), gr.Dropdown(choices=[]), error_markdown(str(exc), heading)
    from engine.tasks.text_classification.data import guess_columns

    columns = [str(c) for c in table.frame.columns]
    try:
        text, label = guess_columns(table.frame)
    except DataError:
        text, label = None, None
    return (
        dataset.id,
        gr.Dropdown(choices=columns, value=text),
        gr.Dropdown(choices=columns, value=label),
        f"Ready to evaluate on **{dataset.name}** ({len(table.frame)} rows).",
    )


def evaluate_job(
    ctx: AppContext,
    job_id: str | None,
    dataset_id: str | None,
    text: str | None,
    label: str | None,
    request: gr.Request,
):
    """Queue an evaluation of the picked job's model on an uploaded labeled file; returns a message and its id."""
    owner = owner_of(ctx, request)
    try:
        model_job = ctx.finished_model(job_id, owner)
        if not dataset_id:
            raise DataError("upload a labeled file to evaluate on first")
        spec = {
            "model": model_job.id,
            "data": dataset_id,
            "text_column": text or None,
            "label_column": label or None,
        }
        new_id = ctx.submit(spec, owner).job_id
    except (DataError, ModelNotFoundError, ValueError) as exc:
        return error_markdown(str(exc), "Not started"), gr.skip()
    return f"✅ Evaluation queued as job `{new_id}`.", new_id


# ---- layout ---------------------------------------------------------------------------------------------------------


def build(ctx: AppContext) -> JobsTab:
    """Lay out the Jobs tab and wire its events."""
    with gr.Row():
        gr.Markdown("All your jobs, newest first. The page updates itself every few seconds.")
        refresh = gr.Button("↻ Refresh", size="sm", scale=0, min_width=110, elem_id="jobs-refresh")
    table = gr.Dataframe(
        value=pd.DataFrame(columns=JOB_COLUMNS),
        label="Your jobs (click a row to open it)",
        interactive=False,
        wrap=True,
        max_height=300,
        elem_id="jobs-table",
    )
    ids = gr.State([])
    job = gr.Dropdown(label="Job", choices=[], value=None, allow_custom_value=True, elem_id="jobs-job")
    remembered_job = gr.BrowserState("", storage_key="playground-job")
    seen = gr.State("")
    detail, progress, cancel, confirm, keep, open_report, open_playground, deleting = _status_section()
    curve = gr.HTML(training_curves_html([]), elem_id="jobs-curve")
    log = gr.Textbox(
        label="Log (last lines)", lines=10, max_lines=10, interactive=False, autoscroll=True, elem_id="jobs-log"
    )
    eval_file, eval_dataset, eval_text, eval_label, eval_button, eval_status = _evaluate_section()
    timer = gr.Timer(REFRESH_SECONDS)

    status_outputs = [detail, progress, curve, log, cancel, open_report, open_playground]
    listing_outputs = [table, job, ids]
    list_bound = bind(ctx, list_jobs)
    refresh.click(list_bound, None, listing_outputs, api_name="list_jobs")
    job.change(bind(ctx, job_status), [job], status_outputs, api_name="job_status", show_progress="hidden").then(
        lambda job_id: job_id or "", [job], [remembered_job], api_visibility="private"
    )
    table.select(pick_row, [ids], [job], api_visibility="private")
    timer.tick(
        bind(ctx, tick),
        [job, seen],
        [*listing_outputs, *status_outputs, deleting[0], seen],
        api_visibility="private",
        show_progress="hidden",
    )
    # Cancelling throws the run away: it takes a second, deliberate click.
    asking = [cancel, confirm, keep]
    cancel.click(lambda: _asking(True), None, asking, api_visibility="private")
    keep.click(lambda: _asking(False), None, asking, api_visibility="private")
    confirm.click(bind(ctx, cancel_job), [job], status_outputs, api_name="cancel_job").then(
        lambda: _asking(False)[1:], None, [confirm, keep], api_visibility="private"
    )
    _wire_delete(ctx, job, deleting, [*listing_outputs, *status_outputs])
    eval_inputs = [eval_dataset, eval_text, eval_label]
    eval_file.upload(bind(ctx, eval_upload), [eval_file], [*eval_inputs, eval_status], api_visibility="private")
    eval_button.click(bind(ctx, evaluate_job), [job, *eval_inputs], [eval_status, job], api_name="evaluate_job")
    return JobsTab(job, table, timer, remembered_job, open_report, open_playground, list_bound, listing_outputs)


def _wire_delete(ctx: AppContext, job: gr.Dropdown, deleting: tuple, outputs: list) -> None:
    """The delete button of the picked job, and the question after it: deleting throws the model away for good."""
    delete, confirm, keep = deleting
    shown = bind(ctx, deletable)
    job.change(shown, [job], [delete], api_visibility="private", show_progress="hidden")
    delete.click(lambda: _asking(True), None, [*deleting], api_visibility="private")
    keep.click(lambda: _asking(False), None, [*deleting], api_visibility="private")
    confirm.click(bind(ctx, delete_job), [job], outputs, api_name="delete_job").then(
        lambda: _asking(False)[1:], None, [confirm, keep], api_visibility="private"
    ).then(shown, [job], [delete], api_visibility="private")  # back after a refusal; gone with the job


def _asking(on: bool) -> tuple:
    """The cancel (or delete) button, or in its place the question whether to really do it."""
    return gr.Button(visible=not on), gr.Button(visible=on), gr.Button(visible=on)


def _status_section() -> tuple[gr.Markdown, gr.HTML, gr.Button, gr.Button, gr.Button, gr.Button, gr.Button, tuple]:
    """The picked job's heading and progress bar, beside the buttons that apply to it (the delete ones together)."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            detail = gr.Markdown(NO_JOB, elem_id="jobs-detail")
            progress = gr.HTML(elem_id="jobs-progress")
        with gr.Column(scale=1, min_width=200):
            cancel = gr.Button("Cancel this job", variant="stop", visible=False, elem_id="jobs-cancel")
            confirm = gr.Button(
                "Yes, cancel it (its training so far is lost)",
                variant="stop",
                visible=False,
                elem_id="jobs-cancel-yes",
            )
            keep = gr.Button("No, keep it running", visible=False, elem_id="jobs-cancel-no")
            open_report = gr.Button("Open its report", visible=False, elem_id="jobs-open-report")
            open_playground = gr.Button("Try the model", visible=False, elem_id="jobs-open-playground")
            deleting = (
                gr.Button("Delete this job", variant="secondary", visible=False, elem_id="jobs-delete"),
                gr.Button("Yes, delete it and its model", variant="stop", visible=False, elem_id="jobs-delete-yes"),
                gr.Button("No, keep it", visible=False, elem_id="jobs-delete-no"),
            )
    return detail, progress, cancel, confirm, keep, open_report, open_playground, deleting


def _evaluate_section() -> tuple[gr.File, gr.Textbox, gr.Dropdown, gr.Dropdown, gr.Button, gr.Markdown]:
    """Score a finished model on another labeled file: the upload, its columns, the button and its message."""
    with gr.Accordion("Evaluate this model on another labeled file", open=False, elem_id="jobs-evaluate"):
        gr.Markdown("Score a finished model on new labeled data; the result is a new job with its own report.")
        with gr.Row():
            eval_file = gr.File(label="Labeled file", file_types=FILE_TYPES, height=110, elem_id="jobs-eval-file")
            with gr.Column():
                eval_dataset = gr.Textbox(visible=False)
                eval_text = gr.Dropdown(label="Text column", choices=[], allow_custom_value=True)
                eval_label = gr.Dropdown(label="Label column", choices=[], allow_custom_value=True)
        eval_button = gr.Button("Evaluate", elem_id="jobs-eval-button")
        eval_status = gr.Markdown()
    return eval_file, eval_dataset, eval_text, eval_label, eval_button, eval_status
