"""Small inline SVG line charts for the live training curves.

Drawn on the server as plain SVG inside gr.HTML: every refresh redraws the whole chart, so series that appear
mid-training (validation scores arrive at the end of each epoch) and growing value ranges always show correctly.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable

from engine.tasks import default_task, get_task
from worker.records import JobEvent

COLOURS = ("#2563eb", "#f59e0b", "#16a34a", "#db2777")
Series = dict[str, list[tuple[float, float]]]


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [math.floor(low / step) * step]
    while ticks[-1] < high - step * 1e-9:  # the last tick is at or beyond `high`, so every point fits
        ticks.append(ticks[-1] + step)
    return [round(tick, 10) for tick in ticks]


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.0e}"


_MARGINS = (52, 16, 30, 58)  # left, right, top, bottom of the plotting area, in SVG units


def _axes(
    width: int, height: int, x_ticks: list[float], y_ticks: list[float], x_label: str
) -> tuple[Callable[[float], float], Callable[[float], float], list[str]]:
    """The value-to-pixel maps of a linear plot and its grid, tick labels and x-axis title."""
    left, right, top, bottom = _MARGINS
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return left + (x - x0) / ((x1 - x0) or 1) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (y - y0) / ((y1 - y0) or 1) * (height - top - bottom)

    parts = []
    for tick in y_ticks:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" class="pg-grid"/>'
        )
        parts.append(f'<text x="{left - 6}" y="{py(tick) + 4:.1f}" text-anchor="end">{_label(tick)}</text>')
    for tick in x_ticks:
        parts.append(f'<text x="{px(tick):.1f}" y="{height - bottom + 16}" text-anchor="middle">{_label(tick)}</text>')
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - bottom + 32}" text-anchor="middle">'
        f"{html.escape(x_label)}</text>"
    )
    return px, py, parts


def line_chart(
    series: Series,
    *,
    title: str,
    x_label: str,
    x_max: float | None = None,
    y_range: tuple[float, float] | None = None,
    empty: str = "",
) -> str:
    """An SVG chart of one or more named series of (x, y) points, with axes, ticks, dots and a legend."""
    width, height = 520, 240
    points = [(x, y) for values in series.values() for x, y in values if math.isfinite(y)]
    head = f'<text x="{width / 2}" y="18" text-anchor="middle" class="pg-chart-title">{html.escape(title)}</text>'
    if not points:
        message = f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="pg-chart-empty">'
        message += f"{html.escape(empty)}</text>"
        return f'<svg viewBox="0 0 {width} {height}" class="pg-chart" role="img">{head}{message}</svg>'
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    x_ticks = _ticks(0.0, max([*xs, x_max or 0.0, 1.0]))
    y_low, y_high = y_range if y_range else (0.0, max(ys) * 1.1 or 1.0)
    y_ticks = _ticks(y_low, y_high)
    px, py, axes = _axes(width, height, x_ticks, y_ticks, x_label)
    parts = [head, *axes]
    legend_x = _MARGINS[0]
    lines: list[str] = []
    for (name, values), colour in zip(series.items(), COLOURS, strict=False):
        finite = [(x, y) for x, y in values if math.isfinite(y)]
        if finite:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in finite)
            drawn = [f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>']
            if len(finite) <= 30:
                drawn += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>' for x, y in finite]
            lines = drawn + lines  # the first series is drawn last, on top, where two series overlap
        parts.append(f'<rect x="{legend_x}" y="{height - 14}" width="12" height="4" fill="{colour}"/>')
        parts.append(f'<text x="{legend_x + 16}" y="{height - 9}">{html.escape(name)}</text>')
        legend_x += 24 + 7 * len(name)
    parts += lines
    return f'<svg viewBox="0 0 {width} {height}" class="pg-chart" role="img">{"".join(parts)}</svg>'


# Validation metrics drawn on the score chart: (key in the eval event, legend name).
_SCORES = (
    ("macro_f1", "validation macro-F1"),
    ("micro_f1", "validation micro-F1"),
    ("accuracy", "validation accuracy"),
)


def training_curves_html(events: list[JobEvent], total_steps: int | None = None, task: str | None = None) -> str:
    """Loss (training and validation) and validation scores by training step; chat jobs have the loss only."""
    loss: Series = {"training loss": [], "validation loss": []}
    scores: Series = {name: [] for _, name in _SCORES}
    for event in events:
        step = float(event.step or 0)
        if event.kind == "log" and event.loss is not None:
            loss["training loss"].append((step, float(event.loss)))
        elif event.kind == "eval":
            if event.loss is not None:
                loss["validation loss"].append((step, float(event.loss)))
            for key, name in _SCORES:
                if (event.metrics or {}).get(key) is not None:
                    scores[name].append((step, float(event.metrics[key])))
    metrics = _curve_metrics(task)
    scores = {name: points for (key, name), points in zip(_SCORES, scores.values(), strict=True) if key in metrics}
    charts = [
        line_chart(
            loss,
            title="Loss (lower is better)",
            x_label="training step",
            x_max=total_steps,
            empty="waiting for the first steps…",
        ),
        line_chart(
            scores,
            title="Validation score (higher is better)",
            x_label="training step",
            x_max=total_steps,
            y_range=(0.0, 1.0),
            empty="measured at the end of each epoch",
        ),
    ]
    if not metrics:  # a language model has no validation score beyond its loss
        charts = charts[:1]
    return f'<div class="pg-charts">{"".join(charts)}</div>'


def _curve_metrics(task: str | None) -> tuple[str, ...]:
    try:
        return get_task(task).curve_metrics if task else default_task().curve_metrics
    except ValueError:
        return default_task().curve_metrics


def search_chart(search: dict | None) -> str:
    """The search's trials as an SVG scatter: best validation score against learning rate (log scale); pruned
    trials hollow, the kept trial larger. Empty without a search."""
    trials = [t for t in (search or {}).get("trials", []) if t.get("learning_rate") and t.get("score") is not None]
    if not trials:
        return ""
    width, height = 520, 260
    left, right, top, bottom = 52, 16, 30, 58
    rates = [math.log10(t["learning_rate"]) for t in trials]
    scores = [t["score"] for t in trials]
    x0, x1 = math.floor(min(rates) * 2) / 2, math.ceil(max(rates) * 2) / 2 + (0.5 if min(rates) == max(rates) else 0)
    y_ticks = _ticks(min(0.0, min(scores)), max(1.0, max(scores)) if max(scores) <= 1 else max(scores) * 1.1)
    y0, y1 = y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return left + (x - x0) / ((x1 - x0) or 1) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (y - y0) / ((y1 - y0) or 1) * (height - top - bottom)

    metric = str(search.get("metric", "score")).replace("_", " ")
    title = f"Learning-rate search: best validation {metric} of each trial"
    parts = [f'<text x="{width / 2}" y="18" text-anchor="middle" class="pg-chart-title">{html.escape(title)}</text>']
    for tick in y_ticks:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" class="pg-grid"/>'
        )
        parts.append(f'<text x="{left - 6}" y="{py(tick) + 4:.1f}" text-anchor="end">{_label(tick)}</text>')
    decade = math.floor(x0)
    while decade <= x1:
        for mantissa in (1, 2, 5):
            x = decade + math.log10(mantissa)
            if x0 <= x <= x1:
                parts.append(
                    f'<text x="{px(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                    f"{mantissa * 10.0**decade:.0e}</text>"
                )
        decade += 1
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - bottom + 32}" text-anchor="middle">'
        "learning rate (log scale)</text>"
    )
    together = {m["trial"] for m in (search.get("ensemble") or {}).get("members", []) if m.get("kept")}
    for trial, x, y in zip(trials, rates, scores, strict=True):
        best = trial.get("number") == search.get("best_trial") or trial.get("number") in together
        fill = COLOURS[0] if trial.get("state") != "pruned" else "none"
        parts.append(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{7 if best else 4}" fill="{fill}" '
            f'stroke="{COLOURS[0]}" stroke-width="2"><title>trial {trial.get("number")}: '
            f"lr {trial['learning_rate']:.2e}, {y:.3f} ({html.escape(str(trial.get('state', '')))})</title>"
            "</circle>"
        )
    kept = "the trials kept (an ensemble)" if len(together) > 1 else "the trial kept"
    parts.append(f'<text x="{left}" y="{height - 9}">● complete   ○ pruned   large: {kept}</text>')
    return f'<svg viewBox="0 0 {width} {height}" class="pg-chart" role="img">{"".join(parts)}</svg>'


def tradeoff_chart(points: list[tuple[str, float, float]], *, metric_name: str) -> str:
    """Exported variants as an SVG scatter: headline test metric against p50 latency, one labelled point per
    variant (the original first, in its own colour). Empty without points."""
    points = [(name, x, y) for name, x, y in points if math.isfinite(x) and math.isfinite(y)]
    if not points:
        return ""
    width, height = 520, 260
    right = _MARGINS[1]
    latencies = [x for _, x, _ in points]
    scores = [y for _, _, y in points]
    x_ticks = _ticks(0.0, max(latencies) * 1.2 or 1.0)  # from zero: a latency reads against none at all
    # Variants usually score within a point or two of each other: the axis spans them with a margin, not 0..1.
    spread = max(max(scores) - min(scores), 0.02)
    high = max(scores) + spread * 0.6
    y_ticks = _ticks(min(scores) - spread * 0.6, min(high, 1.0) if max(scores) <= 1 else high)  # no score above 1
    px, py, axes = _axes(width, height, x_ticks, y_ticks, "p50 latency for one text (ms)")
    title = f"Test {metric_name} against p50 latency (up and to the left is better)"
    parts = [f'<text x="{width / 2}" y="18" text-anchor="middle" class="pg-chart-title">{html.escape(title)}</text>']
    parts += axes
    for index, (name, x, y) in enumerate(points):
        colour = COLOURS[0] if index == 0 else COLOURS[1 + (index - 1) % (len(COLOURS) - 1)]
        label_y = py(y) + 4 if index % 2 == 0 else py(y) + 16  # every other one lower: close points stay legible
        anchor = "end" if px(x) > width - right - 80 else "start"
        label_x = px(x) - 8 if anchor == "end" else px(x) + 8
        parts.append(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="5" fill="{colour}" class="pg-variant-point">'
            f"<title>{html.escape(name)}: {x:.3g} ms, {html.escape(metric_name)} {y:.3f}</title></circle>"
        )
        parts.append(f'<text x="{label_x:.1f}" y="{label_y:.1f}" text-anchor="{anchor}">{html.escape(name)}</text>')
    return f'<svg viewBox="0 0 {width} {height}" class="pg-chart" role="img">{"".join(parts)}</svg>'
