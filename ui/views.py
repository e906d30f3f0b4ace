"""Plain-language views of jobs, data summaries and reports: tables, sentences and small HTML pieces for the tabs.

Pure functions of plain data (Job records, summary and report dicts), so they are tested without a browser.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from worker.records import CANCELLED, EVALUATE, FAILED, QUEUED, RUNNING, SUCCEEDED, Job

# Symbols from common text fonts (not emoji), so they render on machines without an emoji font.
STATUS_WORDS = {
    QUEUED: "… waiting",
    RUNNING: "▶ running",
    SUCCEEDED: "✓ finished",
    FAILED: "✗ failed",
    CANCELLED: "■ cancelled",
}
JOB_COLUMNS = ["Job", "What", "Status", "Progress", "Time left", "Created", "Result"]
_WORDS_NOTICE = "lengths are counted in words"


# ---- small words -------------------------------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """'about 3 min', '45 s', '1 h 05 min'; empty for None."""
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


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
    if job.kind == EVALUATE:
        model = str(spec.get("model", ""))
        source = Path(model).parent.name if model.endswith("model") else file_name(model)
        return f"evaluate {source} on {file_name(spec.get('data'))}"
    data = spec.get("data") or {}
    epochs = (spec.get("params") or {}).get("epochs")
    epochs_text = f", {epochs:g} epoch{'s' if epochs != 1 else ''}" if isinstance(epochs, int | float) else ""
    return f"train {_short_model(spec.get('base_model', ''))} on {file_name(data.get('train'))}{epochs_text}"


def _short_model(name: str) -> str:
    path = Path(name)
    # A model folder inside a job folder (fine-tuning further) reads best as that job's id.
    return path.parent.name if path.name == "model" and path.parent.name else (path.name if "/" in name else name)


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


def jobs_frame(jobs: list[Job]) -> pd.DataFrame:
    """One row per job for the Jobs table, newest first."""
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
                job_title(job),
                STATUS_WORDS.get(job.status, job.status),
                progress,
                duration(job.eta_seconds) if job.status == RUNNING else "",
                when(job.created_at),
                result_text(job),
            ]
        )
    return pd.DataFrame(rows, columns=JOB_COLUMNS)


def progress_html(job: Job) -> str:
    """A progress bar with step count and time left, or the queue position while waiting."""
    share = job.progress or 0.0
    colour = {FAILED: "#dc2626", CANCELLED: "#9ca3af", SUCCEEDED: "#16a34a"}.get(job.status, "#2563eb")
    if job.status == QUEUED:
        caption = f"Waiting for a worker: number {job.position} in line." if job.position else "Waiting for a worker."
    elif job.status == RUNNING and not job.total_steps:
        caption = "Starting: loading the model and the data…"
    elif job.status == RUNNING:
        left = duration(job.eta_seconds)
        caption = f"Step {job.step} of {job.total_steps}" + (f" · about {left} left" if left else "")
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
    if job.status == FAILED:
        lines += ["", f"**What went wrong:** {job.error or 'the job failed without a message'}"]
        if job.hint:
            lines += ["", f"**What to do:** {job.hint}"]
    if job.status == CANCELLED:
        lines += ["", "This job was cancelled; nothing was saved."]
    return "\n".join(lines)


# ---- data --------------------------------------------------------------------------------------------------------


def label_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """Rows per label, for the label distribution chart."""
    counts = summary.get("rows_per_label") or {}
    return pd.DataFrame(
        {
            "label": pd.Series(list(counts), dtype="str"),
            "rows": pd.Series([int(n) for n in counts.values()], dtype="int64"),
        }
    )


def summary_markdown(summary: dict[str, Any], dataset_name: str = "") -> str:
    """The validation summary in sentences: counts, splits, lengths and every notice."""
    labels = summary.get("rows_per_label") or {}
    splits = summary.get("splits") or {}
    lengths = summary.get("length_tokens") or {}
    name = f" **{dataset_name}**" if dataset_name else ""
    lines = [
        f"✓ **Ready to train.**{name}: {summary.get('rows', 0)} usable rows, {len(labels)} labels, "
        f"text from column `{summary.get('text_column')}`, labels from column `{summary.get('label_column')}`.",
        "",
        "- Labels: " + ", ".join(f"**{html.escape(str(k))}** ({v})" for k, v in labels.items()),
    ]
    if splits:
        rows = {split: (info or {}).get("rows", 0) for split, info in splits.items()}
        lines.append(
            f"- {rows.get('train', 0)} rows to learn from, {rows.get('validation', 0)} to check progress while "
            f"training (validation) and {rows.get('test', 0)} kept aside for the final test."
        )
    if lengths:
        unit = lengths.get("unit", "tokens")
        lines.append(
            f"- Text length in {unit}: typically {lengths.get('p50')}, 95% are at most {lengths.get('p95')}, "
            f"the longest has {lengths.get('max')}."
        )
    notices = [n for n in summary.get("notices") or [] if _WORDS_NOTICE not in n]
    if notices:
        lines += ["", "**Worth a look:**", ""] + [f"- ⚠ {notice}" for notice in notices]
    return "\n".join(lines)


def error_markdown(message: str, what: str = "This file can't be used yet") -> str:
    """A data or input error for a non-programmer: what is wrong, and (in the message) what to do."""
    text = str(message).strip()
    first, _, rest = text.partition("\n")
    body = f"✗ **{what}.** {first[:1].upper()}{first[1:]}"
    return body + (f"\n\n```\n{rest}\n```" if rest.strip() else "")


# ---- reports -----------------------------------------------------------------------------------------------------

_HEADLINE = (
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro F1"),
    ("weighted_f1", "Weighted F1"),
    ("macro_precision", "Macro precision"),
    ("macro_recall", "Macro recall"),
)


def headline_markdown(report: dict[str, Any], job: Job | None = None) -> str:
    """Headline metrics and the comparison with the baseline, in words."""
    metrics = report.get("metrics") or {}
    if job is not None:
        title = f"### Report: {job_title(job)} (job `{job.id[:8]}`)"
    else:
        title = f"### Report: {report.get('task', '')} with {_short_model(str(report.get('base_model', '')))}"
    n_test = report.get("n_test")
    scope = f"Scored on {n_test} held-out test rows the model never saw in training." if n_test else ""
    shown = [(key, name) for key, name in _HEADLINE if key in metrics]
    table = "\n".join(
        [
            "| " + " | ".join(name for _, name in shown) + " |",
            "|" + "---|" * len(shown),
            "| " + " | ".join(f"**{metrics[key]:.3f}**" for key, _ in shown) + " |",
        ]
    )
    return "\n\n".join(part for part in (title, scope, table, baseline_sentence(report)) if part)


def baseline_sentence(report: dict[str, Any], metric: str = "macro_f1") -> str:
    """How the fine-tuned model compares with the report's baseline on `metric`, in one sentence."""
    baseline = report.get("baseline") or {}
    ours = (report.get("metrics") or {}).get(metric)
    theirs = baseline.get(metric)
    if ours is None or theirs is None:
        return "No baseline was computed for this report."
    name = baseline.get("name", "the baseline")
    label = metric.replace("_f1", "-F1")
    diff = ours - theirs
    if round(diff, 3) > 0:
        return f"✓ **Better than the simple baseline** ({name}): {label} {ours:.3f} vs {theirs:.3f} ({diff:+.3f})."
    if round(diff, 3) == 0:
        return f"= **Same as the simple baseline** ({name}): {label} {ours:.3f}. Fine-tuning bought nothing here."
    return (
        f"⚠ **Worse than the simple baseline** ({name}): {label} {ours:.3f} vs {theirs:.3f} ({diff:+.3f}). "
        "Try more epochs, another learning rate or more training data."
    )


def per_class_frame(report: dict[str, Any]) -> pd.DataFrame:
    """Precision, recall, F1 and support per label, with the baseline's F1 beside ours."""
    baseline_f1 = (report.get("baseline") or {}).get("per_class_f1") or {}
    rows = []
    for label, row in (report.get("per_class") or {}).items():
        rows.append(
            {
                "Label": label,
                "Precision": round(row["precision"], 3),
                "Recall": round(row["recall"], 3),
                "F1": round(row["f1"], 3),
                "Support": int(row["support"]),
                "Baseline F1": round(baseline_f1[label], 3) if label in baseline_f1 else None,
            }
        )
    frame = pd.DataFrame(rows, columns=["Label", "Precision", "Recall", "F1", "Support", "Baseline F1"])
    return frame if baseline_f1 else frame.drop(columns=["Baseline F1"])


def errors_frame(report: dict[str, Any], limit: int = 10) -> pd.DataFrame:
    """The wrong predictions the model was surest of."""
    rows = [
        {
            "Text": error["text"][:300],
            "True label": error["label"],
            "Predicted": error["predicted"],
            "Confidence": round(error["confidence"], 3),
        }
        for error in (report.get("errors") or [])[:limit]
    ]
    return pd.DataFrame(rows, columns=["Text", "True label", "Predicted", "Confidence"])


def confusion_html(report: dict[str, Any]) -> str:
    """The confusion matrix as a heat map: rows are the true label, columns the prediction."""
    matrix = report.get("confusion_matrix") or {}
    labels = [str(label) for label in matrix.get("labels") or []]
    counts = matrix.get("matrix") or []
    if not labels:
        return "<p>No confusion matrix in this report.</p>"
    peak = max((max(row) for row in counts if row), default=0) or 1
    head = "".join(f'<th scope="col">{html.escape(label)}</th>' for label in labels)
    body = []
    for i, row in enumerate(counts):
        cells = []
        for j, count in enumerate(row):
            strength = count / peak
            hue = "22, 163, 74" if i == j else "220, 38, 38"  # green on the diagonal (right), red off it (wrong)
            text_colour = "#fff" if strength > 0.55 else "#111"
            cells.append(
                f'<td style="background:rgba({hue},{0.08 + 0.85 * strength:.2f});color:{text_colour}" '
                f'title="true {html.escape(labels[i])}, predicted {html.escape(labels[j])}: {count}">{count}</td>'
            )
        body.append(f'<tr><th scope="row">{html.escape(labels[i])}</th>{"".join(cells)}</tr>')
    return (
        '<div class="pg-confusion"><table><caption>Rows: true label · columns: predicted label · '
        "green = right, red = wrong</caption>"
        f'<thead><tr><th class="pg-corner">true ↓ / predicted →</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


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


def _round(value: Any) -> float | None:
    return round(float(value), 3) if isinstance(value, int | float) else None
