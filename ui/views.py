"""Plain-language views of jobs, data summaries and reports: tables, sentences and small HTML pieces for the tabs.

Pure functions of plain data (Job records, summary and report dicts), so they are tested without a browser.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from engine.report_views import duration, report_scope
from engine.report_views import round3 as _round
from engine.report_views import short_model as _short_model
from ui.techniques import short_words, signed, used_in
from worker.records import CANCELLED, EVALUATE, EXPORT, FAILED, QUEUED, RUNNING, SUCCEEDED, Job

# Symbols from common text fonts (not emoji), so they render on machines without an emoji font.
STATUS_WORDS = {
    QUEUED: "… waiting",
    RUNNING: "▶ running",
    SUCCEEDED: "✓ finished",
    FAILED: "✗ failed",
    CANCELLED: "■ cancelled",
}
# What an empty table shows instead of Gradio's placeholder headers "1 2 3".
EMPTY_TABLE = pd.DataFrame(columns=["nothing to show yet"])
# The long description last: at 800 px it pushed Progress, Time left and Result off-screen.
JOB_COLUMNS = ["Job", "Status", "Progress", "Time left", "Result", "Created", "What"]


# ---- small words -------------------------------------------------------------------------------------------------


def when(moment: datetime | None, now: datetime | None = None) -> str:
    """A short local-time stamp: '14:05' today, else '3 Mar 14:05'."""
    if moment is None:
        return ""
    local = moment.replace(tzinfo=UTC).astimezone()
    today = (now or datetime.now(UTC)).astimezone().date()
    return local.strftime("%H:%M") if local.date() == today else local.strftime("%-d %b %H:%M")


def file_name(path: str | None) -> str:
    """The last part of a path, as users know their files."""
    return Path(path).name if path else ""


def job_title(job: Job) -> str:
    """What a job does in a few words: 'train minilm-l6 on reviews.csv'."""
    spec = job.spec or {}
    if job.kind in (EVALUATE, EXPORT):
        model = str(spec.get("model", ""))
        source = Path(model).parent.name if model.endswith("model") else file_name(model)
        if job.kind == EXPORT:
            sparsity = f" at {spec.get('sparsity', 0):.0%} sparsity" if spec.get("to") == "pruned" else ""
            return f"export {source} to {spec.get('to')}{sparsity}"
        return f"evaluate {source} on {file_name(spec.get('data'))}"
    data = spec.get("data") or {}
    epochs = (spec.get("params") or {}).get("epochs")
    epochs_text = f", {epochs:g} epoch{'s' if epochs != 1 else ''}" if isinstance(epochs, int | float) else ""
    search = spec.get("search")
    if isinstance(search, dict):  # trials run inside the job: the list says so, not only its progress
        epochs_text += f", learning-rate search of {search.get('trials', '?')} trials"
    if used_in(spec):
        epochs_text += f", {short_words(used_in(spec))}"
    return f"train {_short_model(spec.get('base_model', ''))} on {file_name(data.get('train'))}{epochs_text}"


def job_line(job: Job, comparison: dict[str, Any] | None = None) -> str:
    """The job list's line: the title, then what the techniques bought over the plain recipe once finished ('...,
    augmentation + adversarial: +0.040 macro F1 over plain'), or the stage a running job is at."""
    title = job_title(job)
    delta = (comparison or {}).get("delta")
    if job.status == SUCCEEDED and used_in(job.spec) and isinstance(delta, int | float):
        name = comparison.get("metric_name") or str(comparison.get("metric", "score")).replace("_", " ")
        return f"{title}: {signed(delta)} {name} over plain"
    if job.status == RUNNING and _stage(job):
        return f"{title} (now: {_stage(job)})"
    return title


def report_title(report: dict[str, Any], job: Job | None = None) -> str:
    """The line a report is headed by: the job that made it, else its task and base model."""
    if job is not None:
        return f"{job_title(job)} (job `{job.id[:8]}`)"
    return report_scope(report)


def job_choice(job: Job) -> tuple[str, str]:
    """(label, value) for a dropdown of jobs."""
    result = result_text(job)
    return f"{job.id[:8]} · {job_title(job)} · {STATUS_WORDS.get(job.status, job.status)}" + (
        f" · {result}" if result else ""
    ), job.id


def result_text(job: Job) -> str:
    """The headline number of a finished job, or why it ended."""
    summary = job.summary or {}
    if job.status == SUCCEEDED:
        if "perplexity" in summary:  # chat
            return f"perplexity {summary['perplexity']:.2f} (base {summary.get('base_perplexity', float('nan')):.2f})"
        if "token_accuracy" in summary:  # a tagger: micro-F1 over entity spans is the headline
            return f"entity micro-F1 {summary['micro_f1']:.3f}"
        if "macro_f1" in summary:
            return f"macro-F1 {summary['macro_f1']:.3f}"
    if job.status == FAILED and job.error:
        return job.error.splitlines()[0][:80]
    return ""


def jobs_frame(jobs: list[Job], comparisons: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per job for the Jobs table, newest first; `comparisons` (job id -> the report's comparison of its
    techniques with the plain recipe) says what they bought."""
    rows = []
    for job in jobs:
        share = job.progress
        if job.status == QUEUED:
            progress = f"#{job.position} in line" if job.position else "in line"
        elif share is not None and job.status == RUNNING:
            progress = f"{share:.0%}"
        elif job.status == SUCCEEDED:
            progress = "100%"
        else:
            progress = ""
        rows.append(
            [
                job.id[:8],
                STATUS_WORDS.get(job.status, job.status),
                progress,
                duration(job.eta_seconds) if job.status == RUNNING else "",
                ("⚠ " if report_warnings(job) else "") + result_text(job),
                when(job.created_at),
                job_line(job, (comparisons or {}).get(job.id)),
            ]
        )
    return pd.DataFrame(rows, columns=JOB_COLUMNS)


PHASE_WORDS = {
    "preparing": "reading the data",
    "loading": "loading the model",
    "training": "training",
    "evaluating": "scoring the test split",
    "reporting": "writing the report",
}


def _phase(job: Job) -> str | None:
    """The job's phase without its stage: 'training: trial 2 of 6' is 'training'."""
    return job.phase.split(": ", 1)[0] if job.phase else None


def _stage(job: Job) -> str:
    """What the phase says after 'training: ': a search's 'trial 2 of 6', a technique's 'member 2 of 3',
    'plain recipe (for comparison)', 'self-training round 1 of 2' or 'domain pre-training'; else ''."""
    return job.phase.split(": ", 1)[1].strip() if job.phase and ": " in job.phase else ""


def _sentence(text: str) -> str:
    """`text` with its first letter upper-cased and the rest as written (capitalize() would write 'Mlm')."""
    return text[:1].upper() + text[1:]


def phases_line(job: Job) -> str:
    """'✓ reading the data · ✓ loading the model · ✓ training · ▶ scoring the test split… · writing the report'."""
    order = list(PHASE_WORDS)
    now = order.index(_phase(job)) if _phase(job) in order else 0
    parts = []
    for i, phase in enumerate(order):
        words = PHASE_WORDS[phase]
        if phase == "training" and job.total_steps:
            stage = f"{_stage(job)}, " if _stage(job) else ""
            words += f" ({stage}{min(job.step, job.total_steps)}/{job.total_steps} steps)"
        elif phase == "training" and _stage(job):
            words += f" ({_stage(job)})"
        parts.append(f"✓ {words}" if i < now else f"▶ {words}…" if i == now else words)
    return " · ".join(parts)


def progress_html(job: Job) -> str:
    """A progress bar with step count and time left, or the queue position while waiting."""
    share = job.progress or 0.0
    colour = {FAILED: "#dc2626", CANCELLED: "#9ca3af", SUCCEEDED: "#16a34a"}.get(job.status, "#2563eb")
    if job.status == QUEUED:
        caption = f"Waiting for a worker: number {job.position} in line." if job.position else "Waiting for a worker."
    elif job.status == RUNNING and _phase(job) not in (None, "training"):
        caption = phases_line(job)
    elif job.status == RUNNING and not job.total_steps:
        starting = f"{_sentence(_stage(job))}: starting" if _stage(job) else "Starting: loading the model and the data"
        caption = f"{starting}…"
    elif job.status == RUNNING and job.step >= job.total_steps and not _stage(job):
        # The last step is not the end: scoring the test split and writing the report can take minutes.
        caption = f"Trained ({job.total_steps} steps): scoring the test split and writing the report…"
    elif job.status == RUNNING:
        left = duration(job.eta_seconds)
        step = min(job.step, job.total_steps)
        caption = f"Step {step} of {job.total_steps}" + (f" · about {left} left" if left else "")
        if _stage(job):  # a trial, an ensemble member, the plain recipe: the steps and the time left are its own
            caption = f"{_sentence(_stage(job))} · {caption}"
        if job.epoch is not None:
            caption += f" · epoch {job.epoch:.1f}"
        if job.cancel_requested:
            caption += " · stopping (cancel requested)…"
    elif job.status == SUCCEEDED:
        caption = "Finished." + (f" Took {duration(_seconds(job))}." if _seconds(job) else "")
    elif job.status == FAILED:
        caption = "Failed."
    else:
        caption = "Cancelled."
    width = max(0.0, min(1.0, share)) * 100
    return (
        '<div class="pg-progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
        f'aria-valuenow="{width:.0f}">'
        f'<div class="pg-progress-track"><div class="pg-progress-fill" style="width:{width:.1f}%;'
        f'background:{colour}"></div></div>'
        f'<div class="pg-progress-caption">{html.escape(caption)}</div></div>'
    )


def _seconds(job: Job) -> float | None:
    if job.started_at and job.finished_at:
        return (job.finished_at - job.started_at).total_seconds()
    return None


def report_warnings(job: Job) -> list[str]:
    """What the job's report says first: a collapsed model, or one that lost to its baseline."""
    return [str(warning) for warning in (job.summary or {}).get("warnings") or []]


def job_markdown(job: Job) -> str:
    """The heading of the job detail: what, status, and for failures the error with what to do next."""
    lines = [f"### {job_title(job).capitalize()}", ""]
    status = STATUS_WORDS.get(job.status, job.status)
    facts = [f"**{status}**", f"job `{job.id}`", f"created {when(job.created_at)}"]
    if job.worker_host and job.status in (RUNNING, SUCCEEDED, FAILED):
        facts.append(f"on {job.worker_host}")
    if job.attempts > 1:
        facts.append(f"attempt {job.attempts}")
    lines.append(" · ".join(facts))
    result = result_text(job) if job.status == SUCCEEDED else ""
    if result:
        summary = job.summary or {}
        key = "baseline_micro_f1" if result.startswith("entity") else "baseline_macro_f1"
        extra = f" (baseline {summary[key]:.3f})" if key in summary else ""
        lines += ["", f"Result on the test split: **{result}**{extra}. Open the **Report** tab for the details."]
    if job.status == SUCCEEDED:
        lines[3:3] = [line for warning in report_warnings(job) for line in ("", f"⚠ **{warning}**")]
    if job.status == FAILED:
        lines += ["", f"**What went wrong:** {job.error or 'the job failed without a message'}"]
        if job.hint:
            lines += ["", f"**What to do:** {job.hint}"]
    if job.status == CANCELLED:
        lines += ["", "This job was cancelled; nothing was saved."]
    return "\n".join(lines)


# ---- data --------------------------------------------------------------------------------------------------------


def error_markdown(message: str, what: str = "This file can't be used yet") -> str:
    """A data or input error for a non-programmer: what is wrong, and (in the message) what to do."""
    text = str(message).strip()
    first, _, rest = text.partition("\n")
    body = f"✗ **{what}.** {first[:1].upper()}{first[1:]}"
    return body + (f"\n\n```\n{rest}\n```" if rest.strip() else "")


# ---- reports -----------------------------------------------------------------------------------------------------


def comparison_frame(runs: list[tuple[Job, dict[str, Any]]]) -> pd.DataFrame:
    """Side by side: one column per run, one row per setting or score (per-class F1 included)."""
    if not runs:
        return pd.DataFrame(columns=["", "(pick two or more finished runs)"])
    labels: list[str] = []
    for _, report in runs:
        labels += [label for label in report.get("per_class") or {} if label not in labels]
    index = [
        "What",
        "Base model",
        "Epochs",
        "Learning rate",
        "Test rows",
        "Accuracy",
        "Macro F1",
        "Weighted F1",
        "Baseline macro F1",
        *(f"F1 · {label}" for label in labels),
        "Training time",
    ]
    columns: dict[str, list[Any]] = {}
    for job, report in runs:
        metrics = report.get("metrics") or {}
        params = (job.spec or {}).get("params") or {}
        per_class = report.get("per_class") or {}
        train = report.get("train") or {}
        values = [
            job_title(job),
            _short_model(str(report.get("base_model", ""))),
            params.get("epochs", ""),
            params.get("learning_rate", ""),
            report.get("n_test", ""),
            _round(metrics.get("accuracy")),
            _round(metrics.get("macro_f1")),
            _round(metrics.get("weighted_f1")),
            _round((report.get("baseline") or {}).get("macro_f1")),
            *(_round((per_class.get(label) or {}).get("f1")) for label in labels),
            duration(train.get("wall_seconds")),
        ]
        columns[f"{job.id[:8]}"] = ["" if value is None else str(value) for value in values]
    return pd.DataFrame({"": index, **columns})
