"""The Playground's variant picker: the model as trained ("original") or one of its exported variants (bf16, int8,
ONNX, pruned, made in the Report tab's Export section), and the line under an answer that says which one served it."""

from __future__ import annotations

import gradio as gr

from engine.export import VARIANTS
from ui.context import ORIGINAL, AppContext
from ui.tabs.common import bind, owner_of
from ui.tabs.report_export import LABELS, task_of

ORIGINAL_LABEL = "original (as trained)"


def variant_choices(ctx: AppContext, job_id: str | None, current: str | None, request: gr.Request):
    """The picker for the picked run: "original" and its exported variants, keeping the current pick when it is
    still there; hidden for a task that has no exports (chat) or a run that is not a finished model."""
    owner = owner_of(ctx, request)
    choices = [(ORIGINAL_LABEL, ORIGINAL)]
    offered = False
    if job_id:
        try:
            job = ctx.finished_model(job_id, owner)
        except ValueError:
            job = None
        if job is not None and task_of(job).exports:
            offered = True
            made = ctx.variants(job)
            choices += [(LABELS.get(name, name), name) for name in VARIANTS if name in made]
    value = current if current in {value for _, value in choices} else ORIGINAL
    return gr.Dropdown(choices=choices, value=value, visible=offered)


def served_line(variant: str | None) -> str:
    """The line under an answer: which variant of the model answered it."""
    if not variant:
        return ""
    if variant == ORIGINAL:
        return "Served by the original model, as trained."
    return f"Served by the **{variant}** variant."


def picker() -> gr.Dropdown:
    """The variant dropdown (hidden until a run whose task can be exported is picked)."""
    return gr.Dropdown(
        label="Variant (exported in the Report tab)",
        choices=[(ORIGINAL_LABEL, ORIGINAL)],
        value=ORIGINAL,
        visible=False,
        scale=2,
        elem_id="playground-variant",
    )


def served_note(elem_id: str) -> gr.Markdown:
    """Where served_line shows, under an answer."""
    return gr.Markdown(elem_classes=["pg-help"], elem_id=elem_id)


def wire(
    ctx: AppContext, model: gr.Dropdown, variant: gr.Dropdown, refresh: gr.Button, notes: list[gr.Markdown]
) -> None:
    """The picker follows the model picker and the ↻ button, and is read again when opened (an export may have just
    finished in the Report tab); a new model or variant clears the served lines of answers it did not give."""
    choices = bind(ctx, variant_choices)
    model.change(choices, [model, variant], [variant], api_visibility="private")
    gr.on([model.change, variant.change], lambda: ("",) * len(notes), None, notes, api_visibility="private")
    refresh.click(choices, [model, variant], [variant], api_visibility="private")
    variant.focus(choices, [model, variant], [variant], api_visibility="private")
