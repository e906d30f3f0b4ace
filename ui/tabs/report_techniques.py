"""The Report tab's techniques part, shown first when a run used techniques: what they bought over the plain recipe
(verdict and side-by-side table), then a short section per technique."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ui.context import AppContext
from ui.tabs.common import owned_report
from ui.technique_report import bought_frame, bought_markdown, technique_sections
from ui.views import EMPTY_TABLE


@dataclass
class TechniquesPart:
    """The components show_techniques fills, in its outputs' order."""

    outputs: list


def techniques_view(report: dict) -> tuple:
    """(whole part shown, comparison shown, verdict, side-by-side table, per-technique sections) of a report."""
    comparison = report.get("comparison") if isinstance(report.get("comparison"), dict) else None
    techniques = report.get("techniques") if isinstance(report.get("techniques"), dict) else None
    sections = technique_sections(techniques, comparison)
    if comparison is None:
        return bool(sections), False, "", EMPTY_TABLE, sections
    return True, True, bought_markdown(comparison, techniques), bought_frame(comparison, techniques), sections


def show_techniques(ctx: AppContext, job_id: str | None, request: gr.Request):
    """What a run's techniques bought and how each one did; hidden for a run without techniques."""
    shown, compared, verdict, table, sections = techniques_view(owned_report(ctx, job_id, request))
    return gr.Column(visible=shown), gr.Group(visible=compared), verdict, table, sections


def build() -> TechniquesPart:
    """Lay out the part (hidden until a run with techniques is picked)."""
    with gr.Column(visible=False, elem_id="report-techniques") as part:
        with gr.Group(visible=False, elem_id="report-bought") as bought:
            verdict = gr.Markdown(elem_id="report-bought-verdict")
            table = gr.Dataframe(
                label="Test split: the plain recipe against the same recipe with the techniques",
                interactive=False,
                wrap=True,
                elem_id="report-bought-table",
            )
        sections = gr.HTML(elem_id="report-technique-sections")
    return TechniquesPart([part, bought, verdict, table, sections])
