"""The Train tab's recipe controls, made from the spec's fields: grouped, the advanced ones folded, each with the
field's bounds and help text; and the search block and presets that expand into exact knob values."""

from __future__ import annotations

from typing import Any

import gradio as gr

from engine.memory import GB, available_bytes, estimate, fit_warning, model_shape
from engine.params import Knob, SearchSpec, TrainingParams, knob
from engine.presets import DEFAULT_PRESET, PRESETS
from engine.spec import JobSpec
from engine.tasks import get_task
from ui.tabs.common import bounds, help_text

# Folded groups of recipe knobs beyond the basic and advanced ones, in the order they show.
GROUPS = (
    ("Optimizer and schedule", ("optimizer", "schedule", "schedule_cycles", "warmup_steps", "max_grad_norm")),
    (
        "Evaluation and early stopping",
        ("eval_strategy", "eval_steps", "early_stopping_patience", "early_stopping_threshold"),
    ),
    ("Memory: accumulation and checkpointing", ("gradient_accumulation_steps", "gradient_checkpointing")),
    ("Speed: compilation", ("compile",)),
    ("Regularisation", ("dropout", "label_smoothing", "class_weights", "freeze_embeddings", "freeze_layers")),
)
RECIPE_FIELDS = tuple(name for _, names in GROUPS for name in names)
SEARCH_FIELDS = tuple(f"search_{name}" for name in SearchSpec.model_fields)
SEARCH_INPUTS = ("search_on", *SEARCH_FIELDS)
FREEZE_WORDS = {"auto": None, "frozen": True, "trained": False}  # freeze_embeddings' three states on the page
WORDS = {
    "optimizer": "Optimizer",
    "schedule": "Learning-rate schedule",
    "schedule_cycles": "Restart cycles",
    "warmup_steps": "Warm-up steps (replaces the share)",
    "max_grad_norm": "Max gradient norm",
    "eval_strategy": "Evaluate every",
    "eval_steps": "Steps between evaluations",
    "early_stopping_patience": "Early-stopping patience (0: off)",
    "early_stopping_threshold": "Early-stopping threshold",
    "gradient_accumulation_steps": "Gradient accumulation steps",
    "gradient_checkpointing": "Gradient checkpointing",
    "compile": "Compile the model (torch.compile)",
    "dropout": "Dropout (empty: the model's)",
    "label_smoothing": "Label smoothing",
    "class_weights": "Class weights",
    "freeze_embeddings": "Token embeddings",
    "freeze_layers": "Frozen lowest layers",
    "search_trials": "Trials",
    "search_learning_rate": "Learning-rate range (lowest, highest)",
    "search_batch_sizes": "Batch sizes to try (empty: the job's)",
    "search_epochs": "Epoch range (empty: the job's)",
    "search_warmup_ratio": "Warm-up share range (empty: the job's)",
    "search_time_budget_minutes": "Time budget in minutes (empty: none)",
    "search_prune": "Prune bad trials",
    "search_ensemble": "Best trials that answer together",
}


def _model_and_name(name: str) -> tuple[type, str]:
    return (SearchSpec, name.removeprefix("search_")) if name.startswith("search_") else (TrainingParams, name)


def widget(name: str) -> gr.components.Component:
    """The control of a recipe or search field: its kind, bounds, default and help text from the spec."""
    model, field_name = _model_and_name(name)
    field = model.model_fields[field_name]
    spec_knob = knob(model, field_name)
    common = {"label": WORDS[name], "info": help_text(field), "elem_id": f"train-{name.replace('_', '-')}"}
    if name == "freeze_embeddings":
        return gr.Radio(choices=list(FREEZE_WORDS), value="auto", **common)
    if spec_knob.kind == "number":
        low, high = bounds(field, 1e-4 if spec_knob.number is float else 1)
        precision = 0 if spec_knob.number is int else None
        return gr.Number(value=field.default, minimum=low, maximum=high, precision=precision, **common)
    if spec_knob.kind == "choice":
        return gr.Dropdown(choices=list(spec_knob.choices), value=field.default, **common)
    if spec_knob.kind == "switch":
        return gr.Checkbox(value=bool(field.default), **common)
    return gr.Textbox(value=_as_text(field.default), **common)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v:g}" for k, v in value.items())
    return str(value)


def build_groups() -> dict[str, gr.components.Component]:
    """The folded recipe groups and the search block, by input name."""
    controls: dict[str, gr.components.Component] = {}
    for title, names in GROUPS:
        with gr.Accordion(title, open=False, elem_id=f"train-group-{names[0].replace('_', '-')}"), gr.Row():
            controls.update({name: widget(name) for name in names})
    with gr.Accordion("Learning-rate search", open=False, elem_id="train-search"):
        controls["search_on"] = gr.Checkbox(
            value=False,
            label="Search for the learning rate",
            info=help_text(JobSpec.model_fields["search"]),
            elem_id="train-search-on",
        )
        with gr.Row():
            controls.update({name: widget(name) for name in SEARCH_FIELDS})
    return controls


def preset_radio() -> gr.Radio:
    """The first choice on the tab: a preset, which fills in the knobs it means."""
    return gr.Radio(
        choices=[(p.title, p.name) for p in PRESETS.values()],
        value=DEFAULT_PRESET,
        label="Preset",
        info=" · ".join(f"{p.title}: {p.description}" for p in PRESETS.values()),
        elem_id="train-preset",
    )


def preset_values(preset: str, task: str, names: tuple[str, ...]) -> list[Any]:
    """The values of `names` (knobs and search inputs) that preset means for the task: its defaults, the preset's
    knobs over them, and its search (or none)."""
    info = get_task(task)
    defaults = {**TrainingParams().model_dump(), **info.default_params}
    expanded = PRESETS[preset].expand(defaults, ensembles="ensemble" in info.techniques)
    values = {**defaults, **expanded["params"]}
    search = {**SearchSpec().model_dump(), **(expanded.get("search") or {})}
    values.update({f"search_{k}": v for k, v in search.items()}, search_on="search" in expanded)
    return [ui_value(name, values[name]) for name in names]


def ui_value(name: str, value: Any) -> Any:
    """A spec value as its control holds it (text boxes hold lists and weights as text)."""
    if name == "freeze_embeddings":
        return next(word for word, state in FREEZE_WORDS.items() if state == value)
    if name == "search_on":
        return value
    model, field_name = _model_and_name(name)
    return _as_text(value) if knob(model, field_name).kind in ("list", "text") else value


def spec_value(name: str, value: Any) -> Any:
    """A control's value as the spec takes it: empty optional numbers unset, text lists parsed, whole numbers int."""
    model, field_name = _model_and_name(name)
    spec_knob: Knob = knob(model, field_name)
    if name == "freeze_embeddings":
        return FREEZE_WORDS.get(value or "auto")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if spec_knob.kind == "list":
        return spec_knob.parse(value)
    if spec_knob.kind == "number":
        return spec_knob.number(value)
    return value


def search_block(values: dict[str, Any]) -> dict[str, Any] | None:
    """The spec's search block from the tab's inputs, or None when the search is off."""
    if not values.get("search_on"):
        return None
    given = {name.removeprefix("search_"): spec_value(name, values[name]) for name in SEARCH_FIELDS}
    defaults = SearchSpec().model_dump()
    # Only what differs from the search defaults, as the CLI's flags would give it.
    return {k: v for k, v in given.items() if v is not None and v != defaults[k]}


def memory_line(base_model: str, params: TrainingParams, task: str) -> str:
    """'Effective batch 16 x 4 = 64 · peak memory about 1.9 GB ... of 20.3 GB free', with a warning when it does not
    fit; empty for a model whose shape is unknown."""
    effective = f"Effective batch {params.batch_size} x {params.gradient_accumulation_steps} = "
    effective += f"{params.batch_size * params.gradient_accumulation_steps}"
    shape = model_shape(base_model)
    if shape is None:
        return effective
    causal = get_task(task).architecture == "causal-lm"
    # 'auto' is counted as fp32: whether the worker's CPU or GPU runs bf16 is not known here, and fp32 is the larger.
    half = params.precision in ("bf16", "bf16-pure", "fp16")
    memory = estimate(shape, params, causal_lm=causal, half_precision=half)
    free = available_bytes("cpu")  # this server's memory: workers on other machines may have more, or a GPU
    line = f"{effective} · estimated peak memory {memory.words()} of {free / GB:.1f} GB free on this server"
    if causal and memory.peak > free and not params.gradient_checkpointing:
        # A chat job that would not fit turns gradient checkpointing on by itself (engine.tasks.chat.recipe).
        checkpointed = params.model_copy(update={"gradient_checkpointing": True})
        memory = estimate(shape, checkpointed, causal_lm=causal, half_precision=half)
        line += f" · gradient checkpointing will turn on by itself: about {memory.peak / GB:.1f} GB"
    warning = fit_warning(memory, free)
    return line + (f"\n\n⚠ **Before you start: {warning}.**" if warning else "")
