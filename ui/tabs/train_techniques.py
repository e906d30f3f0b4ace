"""The Train tab's techniques: a folded section with, for each technique the task's recipe offers, a switch and its
fields' controls (made from the spec fields: bounds, defaults, help text), the comparison with the plain recipe, and
the upload of the unlabeled texts that domain pre-training and self-training read."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gradio as gr

from engine.errors import DataError
from engine.params import knob
from engine.spec import DataSpec, JobSpec
from engine.tabular import EXTENSIONS
from engine.tasks import default_task, get_task
from engine.techniques import TECHNIQUES, Techniques
from engine.techniques.unlabeled import TEXT_SUFFIXES, read_unlabeled
from ui.context import AppContext
from ui.tabs.common import bind, bounds, help_text, owner_of
from ui.techniques import READS_UNLABELED, technique_model
from ui.views import error_markdown
from worker.uploads import Dataset

# The inputs of each technique's fields, by technique: 'augment_copies' is AugmentSpec's `copies`.
FIELDS = {name: tuple(f"{name}_{field}" for field in technique_model(name).model_fields) for name in TECHNIQUES}
PARTS = {input_name: (name, input_name[len(name) + 1 :]) for name in TECHNIQUES for input_name in FIELDS[name]}
# The tab's inputs for the techniques, in the order of its callbacks' parameters.
TECHNIQUE_INPUTS = (
    *(input_name for name in TECHNIQUES for input_name in (f"{name}_on", *FIELDS[name])),
    "compare_with_plain",
    "unlabeled_dataset",
)
# Labels of the controls; a field missing here is labelled by its name.
WORDS = {
    "augment_methods": "Edits",
    "augment_copies": "Copies per example",
    "augment_rate": "Share of a text one edit changes",
    "adversarial_method": "Method",
    "adversarial_epsilon": "Perturbation size (epsilon)",
    "adversarial_steps": "PGD steps",
    "ensemble_members": "Members",
    "ensemble_split": "Members differ by",
    "domain_pretraining_epochs": "Epochs",
    "domain_pretraining_learning_rate": "Learning rate",
    "domain_pretraining_mlm_probability": "Share of tokens masked",
    "domain_pretraining_use_training_texts": "Also learn from the training texts",
    "self_training_rounds": "Rounds",
    "self_training_threshold": "Confidence threshold",
    "self_training_max_per_label": "Most pseudo-labels per label and round (0: all)",
}
UNLABELED_TYPES = [*dict.fromkeys([*TEXT_SUFFIXES, *EXTENSIONS])]  # .txt: one text per line; a table: its texts


@dataclass
class TechniquesSection:
    """The section's inputs by name, and what a change of task shows or hides."""

    controls: dict[str, gr.components.Component]
    shown: list  # the accordion, one group per technique, and the unlabeled upload
    shown_for: typing.Callable[[str], list]


def _label(input_name: str) -> str:
    return WORDS.get(input_name) or PARTS[input_name][1].replace("_", " ").capitalize()


def _item_choices(model: type, field_name: str) -> tuple[str, ...]:
    """The allowed items of a list field whose items are a Literal (augment.methods), else ()."""
    annotation = model.model_fields[field_name].annotation
    args = typing.get_args(annotation)
    return typing.get_args(args[0]) if args and typing.get_origin(args[0]) is Literal else ()


def widget(input_name: str) -> gr.components.Component:
    """The control of a technique's field: its kind, bounds, default and help text from the spec."""
    name, field_name = PARTS[input_name]
    model = technique_model(name)
    field = model.model_fields[field_name]
    spec_knob = knob(model, field_name)
    elem_id = f"train-{input_name.replace('_', '-')}"
    common = {"label": _label(input_name), "info": help_text(field), "elem_id": elem_id}
    if spec_knob.kind == "number":
        low, high = _bounds(input_name)
        value = field.default
        if _zero_is_unset(input_name):  # a number box sends 0 when emptied, so 0 is what 'unset' looks like
            low, value = 0, 0 if value is None else value
        precision = 0 if spec_knob.number is int else None
        return gr.Number(value=value, minimum=low, maximum=high, precision=precision, **common)
    if spec_knob.kind == "choice":
        return gr.Radio(choices=list(spec_knob.choices), value=field.default, **common)
    if spec_knob.kind == "switch":
        return gr.Checkbox(value=bool(field.default), **common)
    if _item_choices(model, field_name):
        return gr.CheckboxGroup(choices=list(_item_choices(model, field_name)), value=list(field.default), **common)
    shown = ", ".join(map(str, field.default)) if isinstance(field.default, tuple) else str(field.default or "")
    return gr.Textbox(value=shown, **common)


def _bounds(input_name: str) -> tuple[float | None, float | None]:
    # A bound like 'above 0' is offered a hair inside, so a small default (a learning rate of 5e-5) stays allowed.
    name, field_name = PARTS[input_name]
    model = technique_model(name)
    return bounds(model.model_fields[field_name], 1 if knob(model, field_name).number is int else 1e-8)


def _zero_is_unset(input_name: str) -> bool:
    """True for an optional number whose bounds leave 0 out (self_training.max_per_label): its box shows 0 for
    unset."""
    name, field_name = PARTS[input_name]
    low, _ = _bounds(input_name)
    return knob(technique_model(name), field_name).optional and low is not None and low > 0


def spec_value(input_name: str, value: Any) -> Any:
    """A control's value as the spec takes it: empty (or 0 where 0 means unset) unset, lists as tuples, whole numbers
    int."""
    name, field_name = PARTS[input_name]
    spec_knob = knob(technique_model(name), field_name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if spec_knob.kind == "number" and value == 0 and _zero_is_unset(input_name):
        return None
    if spec_knob.kind == "list":
        return tuple(value) if isinstance(value, list | tuple) else spec_knob.parse(value)
    if spec_knob.kind == "number":
        return spec_knob.number(value)
    return value


def techniques_block(values: dict[str, Any], task: str) -> dict[str, Any] | None:
    """The spec's techniques block from the tab's inputs, only the task's own techniques and only what differs from
    the defaults (as the CLI's flags give it); None when none is on."""
    block: dict[str, Any] = {}
    offered = get_task(task).techniques
    for name in TECHNIQUES:
        if name not in offered or not values.get(f"{name}_on"):
            continue
        defaults = technique_model(name)().model_dump()
        given = {PARTS[i][1]: spec_value(i, values.get(i)) for i in FIELDS[name]}
        block[name] = {k: v for k, v in given.items() if v is not None and v != defaults[k]}
    if block and values.get("compare_with_plain") is False:
        block["compare_with_plain"] = False
    return block or None


def with_techniques(ctx: AppContext, owner: str, spec: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """`spec` with the techniques block and, when a technique that reads them is on, the unlabeled texts' file
    (resolved from the dataset id as the training file is); DataError when that upload is not the owner's."""
    block = techniques_block(values, spec["task"])
    if block is None:
        return spec
    spec = {**spec, "techniques": block}
    picked = values.get("unlabeled_dataset")
    if picked and set(READS_UNLABELED) & set(block):
        dataset = ctx.datasets.get(picked, owner)
        if dataset is None:
            raise DataError(f"no uploaded file {picked!r} for the unlabeled texts: upload it again under Techniques")
        spec["data"] = {**spec["data"], "unlabeled": str(dataset.path)}
    return spec


def techniques_note(spec: dict[str, Any]) -> str:
    """What the preview says before Start when the techniques do not fit (self-training without unlabeled texts, a
    technique beside a search); empty when they do or none is on."""
    if "techniques" not in spec:
        return ""
    try:
        JobSpec.from_dict(spec)
    except ValueError as exc:
        lines = [line for line in str(exc).splitlines()[1:] if "techniques" in line or "unlabeled" in line]
        lines = [line.replace("(top level): ", "").replace("Value error, ", "").strip() for line in lines]
        if any("needs unlabeled texts" in line for line in lines):
            lines.append("- Upload the unlabeled texts in the **Techniques** section.")
        if lines:
            return "\n\n⚠ **A technique needs fixing:**\n" + "\n".join(lines)
    return ""


def keep_unlabeled(ctx: AppContext, owner: str, path: str, name: str) -> Dataset:
    """Keep a file of unlabeled texts as one of the owner's datasets, read as training will read it: a .txt file
    as one text per line (commas and quotes are text, not columns), any other file as a table with a text column;
    DataError (nothing kept) when it can't be read or holds too few texts."""
    texts = read_unlabeled(path)
    if Path(name).suffix.lower() not in TEXT_SUFFIXES:
        return ctx.datasets.register(owner, path, name)[0]
    kept = ctx.datasets.same_file(owner, path, name)
    rows = len(texts)
    return kept or ctx.datasets.add(owner, path, name, format="text", rows=rows, columns=[], record_unit="texts")


def upload_unlabeled(ctx: AppContext, path: str | None, request: gr.Request):
    """Keep the uploaded unlabeled texts; returns their dataset id (empty when not kept) and a line about them."""
    owner = owner_of(ctx, request)
    if not path:
        return "", "No file received; drop the file of unlabeled texts again."
    name = Path(path).name
    try:
        dataset = keep_unlabeled(ctx, owner, path, name)
    except DataError as exc:
        return "", error_markdown(str(exc), f"{name} can't be read; it was not kept")
    count = f"{dataset.rows:,} {dataset.record_unit}" if dataset.rows is not None else "its texts"
    return dataset.id, f"✓ **{dataset.name}**: {count}, read by domain pre-training and self-training."


def shown_for(task: str) -> list:
    """The section, each technique's group and the unlabeled upload, shown when the task's recipe offers them."""
    offered = get_task(task).techniques
    return [
        gr.Accordion(visible=bool(offered)),
        *(gr.Group(visible=name in offered) for name in TECHNIQUES),
        gr.Group(visible=bool(set(READS_UNLABELED) & set(offered))),
    ]


def build(ctx: AppContext) -> TechniquesSection:
    """Lay out the folded Techniques section and wire its upload and switches."""
    offered = default_task().techniques
    controls: dict[str, gr.components.Component] = {}
    groups = []
    with gr.Accordion("Techniques", open=False, visible=bool(offered), elem_id="train-techniques") as accordion:
        controls["compare_with_plain"] = gr.Checkbox(
            value=True,
            label="Compare with the plain recipe",
            info=help_text(Techniques.model_fields["compare_with_plain"]),
            elem_id="train-compare-with-plain",
        )
        for name, title in TECHNIQUES.items():
            slug = name.replace("_", "-")
            with gr.Group(visible=name in offered, elem_id=f"train-technique-{slug}") as group:
                switch = gr.Checkbox(
                    value=False,
                    label=title,
                    info=help_text(Techniques.model_fields[name]),
                    elem_id=f"train-{slug}-on",
                )
                with gr.Row(visible=False, elem_id=f"train-{slug}-fields") as fields:
                    controls.update({input_name: widget(input_name) for input_name in FIELDS[name]})
            switch.change(lambda on: gr.Row(visible=on), [switch], [fields], api_visibility="private")
            controls[f"{name}_on"] = switch
            groups.append(group)
        with gr.Group(visible=bool(set(READS_UNLABELED) & set(offered)), elem_id="train-unlabeled") as unlabeled:
            upload = gr.File(
                label="Unlabeled texts (for domain pre-training and self-training)",
                file_types=UNLABELED_TYPES,
                type="filepath",
                height=120,
                elem_id="train-unlabeled-upload",
            )
            note = gr.Markdown(help_text(DataSpec.model_fields["unlabeled"]), elem_id="train-unlabeled-note")
            controls["unlabeled_dataset"] = gr.Textbox(value="", visible=False, elem_id="train-unlabeled-dataset")
    picked = controls["unlabeled_dataset"]
    upload.upload(bind(ctx, upload_unlabeled), [upload], [picked, note], api_name="upload_unlabeled")
    upload.clear(lambda: ("", ""), None, [picked, note], api_visibility="private")
    return TechniquesSection(controls, [accordion, *groups, unlabeled], shown_for)
