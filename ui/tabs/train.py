"""Train tab: pick the task and base model, set the training knobs (bounds and help from the spec), and submit."""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
import yaml
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from engine.errors import DataError, ModelNotFoundError
from engine.language import model_warning
from engine.masking import KINDS, MaskKind
from engine.spec import DATA_FILES, DataSpec, JobSpec, TrainingParams, format_validation_error
from engine.tasks import all_tasks, default_task, get_task, task_names
from ui.context import AppContext
from ui.tabs.common import bind, bounds, help_text, named_inputs, owner_of
from ui.tabs.data import DataTab, dataset_choices
from ui.tabs.train_command import cli_command, task_defaults
from ui.tabs.train_knobs import (
    RECIPE_FIELDS,
    SEARCH_INPUTS,
    build_groups,
    memory_line,
    preset_radio,
    preset_values,
    search_block,
    spec_value,
)
from ui.tabs.train_models import fit_model, language_of, model_choices
from ui.tabs.train_techniques import TECHNIQUE_INPUTS, techniques_note, with_techniques
from ui.tabs.train_techniques import build as build_techniques
from ui.views import error_markdown
from worker.quotas import QuotaError

# (field, widget, step) for every training knob; the widget's bounds and help text come from the spec field.
BASIC = (("epochs", "slider", 1), ("batch_size", "slider", 1), ("learning_rate", "number", 1e-5))
ADVANCED = (
    ("max_length", "slider", 8),
    ("warmup_ratio", "slider", 0.01),
    ("weight_decay", "slider", 0.01),
    ("seed", "number", 1),
)
SPLITS = (("validation_fraction", 0.01), ("test_fraction", 0.01))
LORA = (("lora_rank", "slider", 1), ("lora_alpha", "slider", 1), ("lora_dropout", "slider", 0.01))
METHOD_WORDS = {
    "lora": "LoRA adapters",
    "ia3": "IA3 (learned rescaling)",
    "full": "Full fine-tuning",
}  # how the spec's methods read on the page
# The method box shows for the tasks that read one of these knobs.
METHOD_KNOBS = ("method", *(name for name, _, _ in LORA))
# The data-spec fields beyond text/label that tasks map their columns with, in the order of the Data tab's pickers.
TASK_COLUMN_FIELDS = (
    "tokens_column",
    "tags_column",
    "messages_column",
    "instruction_column",
    "input_column",
    "output_column",
)
# The knobs of TrainingParams the tab sets, in the order of its inputs.
PARAM_FIELDS = (*(name for name, _, _ in BASIC + ADVANCED), "precision", *METHOD_KNOBS, *RECIPE_FIELDS)
# The names of the tab's inputs, once: the order of `inputs` and of preview_spec's and submit_job's parameters.
INPUT_FIELDS = (
    "dataset_id",
    "text_column",
    "label_column",
    "task",
    "base_model",
    *(name for name, _, _ in BASIC + ADVANCED),
    "precision",
    *(name for name, _ in SPLITS),
    "validation_dataset",
    "test_dataset",
    *TASK_COLUMN_FIELDS,
    *METHOD_KNOBS,
    "encoding",
    "preset",
    *RECIPE_FIELDS,
    *SEARCH_INPUTS,
    *TECHNIQUE_INPUTS,
    "mask_personal_data",
)
# The knobs a browser remembers per task, so a reload keeps what was set.
KEPT_KNOBS = tuple(name for name in PARAM_FIELDS if name != "lora_target_modules")
# What a preset sets: every knob a browser keeps, and the search block.
PRESET_TARGETS = (*KEPT_KNOBS, *SEARCH_INPUTS)
# The knobs a change of task resets to that task's defaults.
TASK_DEFAULT_KNOBS = ("batch_size", "learning_rate", "max_length", "method")
LABELS = {
    "epochs": "Epochs",
    "batch_size": "Batch size",
    "learning_rate": "Learning rate",
    "max_length": "Max length (tokens)",
    "warmup_ratio": "Warm-up share",
    "weight_decay": "Weight decay",
    "seed": "Seed",
    "precision": "Precision",
    "validation_fraction": "Validation share",
    "test_fraction": "Test share",
    "method": "Fine-tuning method",
    "lora_rank": "LoRA rank",
    "lora_alpha": "LoRA alpha",
    "lora_dropout": "LoRA dropout",
}
# Sliders over a huge allowed range are unusable; these are the ranges offered, always inside the spec's bounds.
SLIDER_CAPS = {"epochs": 20, "batch_size": 128, "max_length": 1024, "lora_rank": 128, "lora_alpha": 256}


@dataclass
class TrainTab:
    """The Submit button and the id of the job it queued (empty when the last try failed)."""

    submit: gr.Button
    status: gr.Markdown
    submitted_job: gr.Textbox
    base_model: gr.Dropdown
    validation_dataset: gr.Dropdown
    test_dataset: gr.Dropdown
    refresh_choices: Callable[..., tuple]  # (request) -> (validation, test) dataset pickers
    restore: tuple  # (models_for, inputs, outputs): run on page load, it puts back what this browser set


def tasks() -> list[str]:
    """The tasks a job spec accepts."""
    return task_names()


def _widget(name: str, kind: str, step: float, model: type = TrainingParams) -> gr.components.Component:
    field = model.model_fields[name]
    low, high = bounds(field, step)
    if kind == "slider":
        high = min(high, SLIDER_CAPS[name]) if name in SLIDER_CAPS and high is not None else high
        return gr.Slider(
            minimum=low,
            maximum=high,
            value=field.default,
            step=step,
            label=LABELS[name],
            info=help_text(field),
            elem_id=f"train-{name.replace('_', '-')}",
        )
    return gr.Number(
        value=field.default,
        minimum=low,
        maximum=high,
        step=step,
        precision=0 if field.annotation is int else None,
        label=LABELS[name],
        info=help_text(field),
        elem_id=f"train-{name.replace('_', '-')}",
    )


def build_spec(
    dataset_path: str,
    text_column: str | None,
    label_column: str | None,
    task: str,
    base_model: str,
    params: dict[str, Any],
    splits: dict[str, Any],
    columns: dict[str, str | None] | None = None,
    search: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The job spec as a plain dict, as the CLI's YAML would hold it: only the task's own columns and knobs."""
    given = {"text_column": text_column, "label_column": label_column, **(columns or {})}
    data: dict[str, Any] = {"train": dataset_path}
    data.update({name: given.get(name) or None for name in get_task(task).column_fields})
    data.update({k: v for k, v in splits.items() if v not in (None, "")})
    # Knobs only other tasks read stay out of the spec, so it reads as the user meant it.
    foreign = {name for other in all_tasks() for name in other.own_params} - set(get_task(task).own_params)
    params = {k: v for k, v in params.items() if k not in foreign}
    spec = {"task": task, "base_model": base_model, "data": data, "params": params}
    return spec if search is None else {**spec, "search": search}


def spec_from(ctx: AppContext, owner: str, values: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The job spec of the tab's inputs and the training file's name; DataError when a picked file is missing."""
    dataset_id = values["dataset_id"]
    if not dataset_id:
        raise DataError("no training data picked: upload a file or pick one in the Data tab")
    dataset = ctx.datasets.get(dataset_id, owner)
    if dataset is None:
        raise DataError(f"no uploaded file {dataset_id!r}: pick one in the Data tab")
    params = {}
    defaults = task_defaults(values["task"])
    for name in PARAM_FIELDS:
        value = spec_value(name, values[name]) if name in RECIPE_FIELDS else values[name]
        if value is None and not (name in RECIPE_FIELDS and values[name] is not None):
            value = defaults[name]  # a client that left a knob out gets the default
        annotation = TrainingParams.model_fields[name].annotation
        params[name] = int(value) if annotation is int and value is not None else value
    splits: dict[str, Any] = {name: values[name] for name, _ in SPLITS}
    splits["encoding"] = values["encoding"]  # the Data tab's pick; empty: guessed when the file is read
    splits["mask_personal_data"] = list(values.get("mask_personal_data") or []) or None  # none ticked: off
    for split in ("validation", "test"):
        picked = values[f"{split}_dataset"]
        if picked:
            other = ctx.datasets.get(picked, owner)
            if other is None:
                raise DataError(f"no uploaded file {picked!r} for the {split} split: pick one from the list")
            splits[split] = str(other.path)
    spec = build_spec(
        str(dataset.path),
        values["text_column"],
        values["label_column"],
        values["task"],
        values["base_model"] or "",
        params,
        splits,
        {name: values.get(name) for name in TASK_COLUMN_FIELDS},
        search_block(values),
    )
    return with_techniques(ctx, owner, spec, values), dataset.name


# One named parameter per input (gradio_client calls them by position and by name); their order is INPUT_FIELDS.
@named_inputs(INPUT_FIELDS)
def preview_spec(ctx: AppContext, values: dict[str, Any], request: gr.Request = None):
    """The equivalent `playground train` command and YAML spec of the current settings, and what the job will
    need in memory."""
    owner = owner_of(ctx, request)
    try:
        spec, name = spec_from(ctx, owner, values)
    except DataError:
        return "Pick a file in the **Data** tab first.", "", ""
    task, data = values["task"], spec["data"]
    mapped = " · ".join(
        f"{key.removesuffix('_column')} from `{data[key]}`" for key in get_task(task).column_fields if data.get(key)
    )
    line = f"Training data: **{name}** · {get_task(task).short_title}" + (
        f" · {mapped}" if mapped else " · columns guessed"
    )
    warning = model_warning(task, language_of(data["train"], task, values), spec["base_model"])
    if warning:  # said before Start is pressed, with the model that reads the data named
        line += f"\n\n⚠ **Before you start: {warning}.**"
    try:
        line += "\n\n" + memory_line(spec["base_model"], TrainingParams.model_validate(spec["params"]), task)
    except ValidationError as exc:  # Start says which knob; the preview says it too
        line += f"\n\n⚠ **A setting needs fixing:**\n{format_validation_error(exc)}"
    line += techniques_note(spec)
    # The user's own file names, as on their machine: not where the server keeps the uploads.
    files = {key: ctx.public_text(value) for key, value in data.items() if key in DATA_FILES and value}
    shown = {**spec, "data": {**data, **files}}
    return line, cli_command(shown), yaml.safe_dump(shown, sort_keys=False, allow_unicode=True)


@named_inputs(INPUT_FIELDS)
def submit_job(ctx: AppContext, values: dict[str, Any], request: gr.Request = None):
    """Check the data and settings, then queue the training job; returns a message and the new job id."""
    owner = owner_of(ctx, request)
    try:
        spec, _ = spec_from(ctx, owner, values)
        submission = ctx.submit(spec, owner)
    except QuotaError as exc:  # before DataError: a disk quota error is one too, but the data is fine
        return error_markdown(str(exc), "Not started: you are at one of your limits"), ""
    except (DataError, ModelNotFoundError) as exc:
        return error_markdown(str(exc), "Not started: the data needs fixing"), ""
    except ValueError as exc:
        return error_markdown(str(exc), "Not started: a setting needs fixing"), ""
    job_id = submission.job_id
    warnings = "".join(f"\n\n⚠ **{warning}**" for warning in submission.warnings)
    return f"✓ Queued as job `{job_id}`. Follow it in the **Jobs** tab.{warnings}", job_id


def models_for(task_name: str, remembered: dict | None = None):
    """Base models that can learn the task, its knobs (the task's defaults, or what this browser last set for
    it), and the method settings shown for the tasks that read them."""
    choices = model_choices(task_name)
    defaults = task_defaults(task_name)
    names = {c[1] for c in choices}
    picked = defaults["base_model"] if defaults["base_model"] in names else (choices[0][1] if choices else None)
    kept = (remembered or {}).get(task_name) or {}
    values = [_knob(name, kept, defaults) for name in KEPT_KNOBS]
    return (
        gr.Radio(value=task_name),
        gr.Dropdown(choices=choices, value=picked),
        *values,
        gr.Accordion(visible=bool(set(get_task(task_name).own_params) & set(METHOD_KNOBS))),
    )


def _knob(name: str, kept: dict, defaults: dict) -> dict:
    if name in kept:
        return gr.update(value=kept[name])
    return gr.update(value=defaults[name]) if name in TASK_DEFAULT_KNOBS else gr.skip()


def restore_knobs(task_name: str, remembered: dict | None) -> list:
    """The knobs this browser last set for the task, and nothing else: the base model stays as picked (the one
    that reads the data, or the user's own choice)."""
    kept = (remembered or {}).get(task_name) or {}
    return [gr.update(value=kept[name]) if name in kept else gr.skip() for name in KEPT_KNOBS]


def remember(task_name: str, remembered: dict | None, *values: Any) -> dict:
    """This browser's knobs for the task, kept across reloads (BrowserState)."""
    return {**(remembered or {}), task_name: dict(zip(KEPT_KNOBS, values, strict=True))}


def refresh_choices(ctx: AppContext, request: gr.Request):
    """The owner's uploaded files as choices of the validation and test file pickers."""
    owner = owner_of(ctx, request)
    choices = dataset_choices(ctx.datasets.list(owner))
    return gr.Dropdown(choices=choices), gr.Dropdown(choices=choices)


def build(ctx: AppContext, data: DataTab) -> TrainTab:
    """Lay out the Train tab and wire Submit."""
    source = gr.Markdown("Pick a file in the **Data** tab first.", elem_id="train-source")
    controls, chat_box = _settings()
    techniques = build_techniques(ctx)
    controls.update(techniques.controls)
    model_note = gr.Markdown(elem_id="train-model-note")
    with gr.Row():
        submit = gr.Button("Start training", variant="primary", scale=0, min_width=220, elem_id="train-submit")
        status = gr.Markdown(elem_id="train-status")
    submitted_job = gr.Textbox(visible=False, elem_id="train-job-id")
    with gr.Accordion("The same job from the command line", open=False, elem_id="train-equivalent"):
        command = gr.Code(label="Command", language="shell", interactive=False, elem_id="train-cli")
        spec_yaml = gr.Code(
            label="Job spec (YAML, for `playground submit spec.yaml`)", language="yaml", lines=12, elem_id="train-spec"
        )

    from_data = {
        "dataset_id": data.dataset,
        "text_column": data.text_column,
        "label_column": data.label_column,
        "encoding": data.encoding,
    }
    by_name = {**from_data, **{name: data.task_columns[name] for name in TASK_COLUMN_FIELDS}, **controls}
    inputs = [by_name[name] for name in INPUT_FIELDS]
    task, base_model = controls["task"], controls["base_model"]
    task_outputs = [task, base_model, *(controls[name] for name in KEPT_KNOBS), chat_box]
    remembered = gr.BrowserState({}, storage_key="playground-train-settings")
    knobs = [controls[name] for name in KEPT_KNOBS]
    gr.on(
        [knob.change for knob in knobs],  # typed, dragged or set by a task switch: what the page shows
        remember,
        [task, remembered, *knobs],
        [remembered],
        api_visibility="private",
        show_progress="hidden",
    )
    _follow_the_data(ctx, data, task, [base_model, model_note], task_outputs, remembered)
    task.change(techniques.shown_for, [task], techniques.shown, api_visibility="private")
    gr.on(
        [component.change for component in inputs],
        bind(ctx, preview_spec),
        inputs,
        [source, command, spec_yaml],
        api_name="preview_spec",
        trigger_mode="always_last",
        show_progress="hidden",
    )
    submit.click(bind(ctx, submit_job), inputs, [status, submitted_job], api_name="submit_job", concurrency_limit=4)
    validation_dataset, test_dataset = controls["validation_dataset"], controls["test_dataset"]
    # A preset fills in every knob it means (and the search), so the spec below shows exactly what it runs.
    preset_targets = [controls[name] for name in PRESET_TARGETS]
    controls["preset"].input(
        lambda preset, task_name: preset_values(preset, task_name, PRESET_TARGETS),
        [controls["preset"], task],
        preset_targets,
        api_visibility="private",
    )
    restore = (restore_knobs, [task, remembered], knobs)
    return TrainTab(
        submit,
        status,
        submitted_job,
        base_model,
        validation_dataset,
        test_dataset,
        bind(ctx, refresh_choices),
        restore,
    )


def _follow_the_data(ctx: AppContext, data: DataTab, task: gr.Radio, fitted: list, task_outputs: list, remembered):
    """The base model follows the data: a new file or task gets the model that reads it, and the note says why."""
    fit_inputs = [data.dataset, task, data.text_column, data.label_column]
    fit_inputs += [data.task_columns[name] for name in TASK_COLUMN_FIELDS]
    fit = bind(ctx, fit_model)
    task.input(models_for, [task, remembered], task_outputs, api_visibility="private").then(
        fit, fit_inputs, fitted, api_visibility="private"
    )
    data.task.change(models_for, [data.task, remembered], task_outputs, api_visibility="private").then(
        fit, fit_inputs, fitted, api_visibility="private"
    )
    data.dataset.change(fit, fit_inputs, fitted, api_visibility="private")


def _settings() -> tuple[dict[str, gr.components.Component], gr.Accordion]:
    """Task, base model, every training knob and the split files, by input name; and the chat-only box."""
    controls: dict[str, gr.components.Component] = {"preset": preset_radio()}
    with gr.Row():
        controls["task"] = gr.Radio(
            choices=[(task.short_title, task.name) for task in all_tasks()],
            value=default_task().name,
            label="Task",
            info=JobSpec.model_fields["task"].description,
            elem_id="train-task",
        )
        controls["base_model"] = gr.Dropdown(
            choices=model_choices(default_task().name),
            value=default_task().default_base_model,
            label="Base model",
            info=JobSpec.model_fields["base_model"].description,
            allow_custom_value=True,
            elem_id="train-base-model",
        )
    with gr.Row():
        controls.update({name: _widget(name, kind, step) for name, kind, step in BASIC})
    with gr.Accordion("Advanced settings", open=False, elem_id="train-advanced"):
        with gr.Row():
            controls.update({name: _widget(name, kind, step) for name, kind, step in ADVANCED})
        with gr.Row():
            controls["precision"] = _choice("precision", list(typing.get_args(_field("precision").annotation)))
            controls.update({name: _widget(name, "slider", step, DataSpec) for name, step in SPLITS})
        controls["mask_personal_data"] = _mask_choice()
        controls.update(build_groups())
    # Shown from the start: every registered task reads the method (models_for hides it for one that does not).
    with gr.Accordion("Fine-tuning method and LoRA", open=True, elem_id="train-chat") as chat_box:
        with gr.Row():
            methods = typing.get_args(TrainingParams.model_fields["method"].annotation)
            controls["method"] = _choice("method", [(METHOD_WORDS.get(m, m), m) for m in methods])
            controls.update({name: _widget(name, kind, step) for name, kind, step in LORA})
        with gr.Row():
            controls["validation_dataset"] = _split_file("validation")
            controls["test_dataset"] = _split_file("test")
    return controls, chat_box


def _field(name: str) -> FieldInfo:
    return TrainingParams.model_fields[name]


def _choice(name: str, choices: list) -> gr.Radio:
    """A radio for a TrainingParams field with a few allowed values."""
    field = _field(name)
    return gr.Radio(
        choices=choices,
        value=field.default,
        label=LABELS[name],
        info=help_text(field),
        elem_id=f"train-{name}",
    )


def _mask_choice() -> gr.CheckboxGroup:
    """The kinds of personal data to mask (DataSpec.mask_personal_data); none ticked: texts are used as they are."""
    field = DataSpec.model_fields["mask_personal_data"]
    many = {kind: KINDS[kind][2] for kind in typing.get_args(MaskKind)}  # "e-mail addresses", ...
    return gr.CheckboxGroup(
        choices=[(words[:1].upper() + words[1:], kind) for kind, words in many.items()],
        value=[],
        label="Mask personal data before training",
        info=help_text(field),
        elem_id="train-mask-personal-data",
    )


def _split_file(split: str) -> gr.Dropdown:
    """The optional picker of a separate validation or test file."""
    return gr.Dropdown(
        label=f"Separate {split} file (optional)",
        info=DataSpec.model_fields[split].description,
        choices=[],
        value="",
        allow_custom_value=True,
        elem_id=f"train-{split}-file",
    )
