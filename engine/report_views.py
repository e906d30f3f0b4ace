"""Report and data-summary views every task shares, as plain data (markdown, HTML, DataFrames), no UI toolkit."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def report_scope(report: dict[str, Any]) -> str:
    """What a report is about when no job title is at hand: its task and base model."""
    return f"{report.get('task', '')} with {short_model(str(report.get('base_model', '')))}"


# Said once, beside the lengths, not among the notices (the older wording too, in reports already written).
LENGTH_NOTICES = ("lengths are estimated in tokens", "lengths are counted in words")


def label_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """Rows per label, for the label distribution chart."""
    counts = summary.get("rows_per_label") or {}
    return pd.DataFrame(
        {
            "label": pd.Series(list(counts), dtype="str"),
            "rows": pd.Series([int(n) for n in counts.values()], dtype="int64"),
        }
    )


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
                # Three decimals each, as text: 0, 0.8 and 0.889 side by side read as different precisions.
                "Precision": f"{row['precision']:.3f}",
                "Recall": f"{row['recall']:.3f}",
                "F1": f"{row['f1']:.3f}",
                "Support": int(row["support"]),
                "Baseline F1": f"{baseline_f1[label]:.3f}" if label in baseline_f1 else "",
            }
        )
    frame = pd.DataFrame(rows, columns=["Label", "Precision", "Recall", "F1", "Support", "Baseline F1"])
    return frame if baseline_f1 else frame.drop(columns=["Baseline F1"])


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


def warnings_markdown(report: dict[str, Any]) -> str:
    """A report's warnings (a collapsed model, a loss to the baseline), one bold line each, for the top of a view."""
    return "\n\n".join(f"⚠ **{warning}**" for warning in report.get("warnings") or [])


def readable_cell(value: Any) -> Any:
    """A cell as text a person reads: chat turns as 'role: text' lines, lists joined, records as JSON."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list) and value and all(isinstance(v, dict) and "content" in v for v in value):
        # One line a turn: the turn's own line breaks would make its next line look like another turn.
        return "\n".join(
            f"{v.get('role', v.get('from', '?'))}: {' '.join(str(v.get('content', '')).split())}" for v in value
        )
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


# A column whose values are typically longer than this goes last, so labels and scores stay on screen.
LONG_TEXT_CHARS = 60


def readable_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A preview whose list and record cells are text, not '[object Object],[object Object]', with the short
    columns (ids, labels, scores) first and long texts last: long reviews pushed the labels off-screen."""
    if not len(frame):
        return frame
    frame = frame.apply(lambda column: column.map(readable_cell))
    typical = {name: frame[name].astype(str).str.len().median() for name in frame.columns}
    short = [name for name in frame.columns if typical[name] <= LONG_TEXT_CHARS]
    return frame[short + [name for name in frame.columns if name not in short]]


def round3(value: Any) -> float | None:
    return round(float(value), 3) if isinstance(value, int | float) else None


def notices_markdown(summary: dict[str, Any]) -> list[str]:
    notices = [n for n in summary.get("notices") or [] if not any(said in n for said in LENGTH_NOTICES)]
    return ["", "**Worth a look:**", ""] + [f"- ⚠ {notice}" for notice in notices] if notices else []


def length_sentence(summary: dict[str, Any], what: str) -> list[str]:
    lengths = summary.get("length_tokens") or {}
    if not lengths:
        return []
    unit = lengths.get("unit", "tokens")
    return [
        f"- {what} length in {unit}: typically {lengths.get('p50')}, 95% are at most {lengths.get('p95')}, "
        f"the longest has {lengths.get('max')}."
    ]


def counts_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """The chart under the summary: rows per label, entities per type, or turns per role (label/rows columns)."""
    counts = summary.get("rows_per_label") or summary.get("entities_per_type") or {}
    if not counts and summary.get("turns"):
        counts = {role: n for role, n in summary["turns"].items() if role != "total"}
    return pd.DataFrame(
        {
            "label": pd.Series(list(counts), dtype="str"),
            "rows": pd.Series([int(n) for n in counts.values()], dtype="int64"),
        }
    )


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


def short_model(name: str) -> str:
    """A base model as people name it: a catalog name, a folder's last part, or the job a model folder is in."""
    path = Path(name)
    # A model folder inside a job folder (fine-tuning further) reads best as that job's id.
    return path.parent.name if path.name == "model" and path.parent.name else (path.name if "/" in name else name)
