"""Data tab: upload a labeled file (kept per owner), preview it, map its columns and read the validation summary."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from engine.errors import DataError
from engine.spec import DataSpec
from engine.tabular import read_table
from ui.context import AppContext, inspect_task_data
from ui.tabs.common import owner_of, user_error
from ui.task_views import TASK_WORDS, chat_summary_markdown, ner_summary_markdown, task_frame
from ui.views import error_markdown, label_frame, summary_markdown, when
from worker.uploads import Dataset

FILE_TYPES = [
    ".csv",
    ".tsv",
    ".tab",
    ".txt",
    ".json",
    ".jsonl",
    ".ndjson",
    ".parquet",
    ".pq",
    ".conll",
    ".iob",
    ".bio",
]
TASKS = ("text-classification", "token-classification", "chat")
# Column pickers of each task beyond text/label: (DataSpec field, question shown above the picker).
TASK_COLUMNS = (
    ("tokens_column", "Which field holds the list of tokens?"),
    ("tags_column", "Which field holds the list of tags? (CoNLL: the tag column's number, default the last)"),
    ("messages_column", "Which column holds the conversations (lists of {role, content})?"),
    ("instruction_column", "…or which column holds the instruction (the prompt)?"),
    ("input_column", "Which column holds extra input for the instruction (optional)?"),
    ("output_column", "Which column holds the reference answer?"),
)
CONLL_SUFFIXES = (".conll", ".iob", ".bio")
_TAG = re.compile(r"^(O|[BIES]-.+|[BIES]|-X-)$")
PREVIEW_ROWS = 20
START_HERE = (
    "**Start here.** Drop a file of labeled examples on the box at the left. *Text classification*: one row per "
    "example, one column with the text and one with its label (for instance a review and `positive`/`negative`). "
    "*Token classification (NER)*: a CoNLL file (one token and its tag per line) or JSONL with a list of tokens and "
    "a list of tags per line. *Chat*: JSONL with a `messages` list per line, or a table with instruction and answer "
    "columns. The task is detected from the file; change it below if the guess is wrong."
)


@dataclass
class DataTab:
    """The components other tabs read: the picked dataset, its task and its column mapping."""

    upload: gr.File
    dataset: gr.Dropdown
    text_column: gr.Dropdown
    label_column: gr.Dropdown
    summary: gr.Markdown
    preview: gr.Dataframe
    chart: gr.BarPlot
    refresh: gr.Button
    on_load: Callable[..., tuple]  # (current dataset id, request) -> [dataset, *shown]; run when the page opens
    task: gr.Radio
    task_columns: dict[str, gr.Dropdown]  # DataSpec field -> picker, for token classification and chat
    task_view: Callable[..., tuple]  # (dataset id, request) -> task_outputs; run after on_load
    task_outputs: list  # [task, *task pickers, *picker groups]


def dataset_choices(datasets: list[Dataset]) -> list[tuple[str, str]]:
    """(label, id) pairs for the dataset picker, newest first."""
    return [
        (f"{d.name} · {d.rows if d.rows is not None else '?'} rows · uploaded {when(d.created_at)}", d.id)
        for d in datasets
    ]


def detect_task(path: Path, frame: pd.DataFrame | None) -> str:
    """The task a file is most likely for: CoNLL or token/tag lists -> NER, messages or instructions -> chat."""
    if path.suffix.lower() in CONLL_SUFFIXES:
        return "token-classification"
    if frame is None or frame.empty:
        return "text-classification"
    names = {str(c).lower(): c for c in frame.columns}
    first = frame.iloc[0]
    lists = [c for c in frame.columns if isinstance(first[c], list | tuple)]
    if any(isinstance(first[c][0] if len(first[c]) else None, dict) for c in lists) or "messages" in names:
        return "chat"
    if len(lists) >= 2 or {"tokens", "tags"} <= set(names) or {"tokens", "ner_tags"} <= set(names):
        return "token-classification"
    if "instruction" in names or ("prompt" in names and ({"output", "response", "completion"} & set(names))):
        return "chat"
    # A headerless two-column file whose last column is all tags reads as CoNLL.
    last = frame.columns[-1]
    if len(frame.columns) <= 4 and (_TAG.match(str(last)) or str(last).startswith("-DOCSTART-")):
        values = frame[last].dropna().astype(str).head(200)
        if len(values) and all(_TAG.match(v) for v in values):
            return "token-classification"
    return "text-classification"


def data_spec(path: str, task: str, columns: dict[str, str | None]) -> DataSpec:
    """The data part of a job spec for `task`: only that task's columns, empty ones left to be guessed."""
    fields = {
        "text-classification": ("text_column", "label_column"),
        "token-classification": ("tokens_column", "tags_column"),
        "chat": ("messages_column", "instruction_column", "input_column", "output_column"),
    }[task]
    return DataSpec(train=path, **{name: columns.get(name) or None for name in fields})


def build(ctx: AppContext) -> DataTab:
    """Lay out the Data tab and wire its events."""
    gr.Markdown(START_HERE, elem_classes=["pg-intro"])
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            upload = gr.File(
                label="Drop a labeled file here (CSV, TSV, JSON, JSONL, Parquet, CoNLL)",
                file_types=FILE_TYPES,
                type="filepath",
                height=170,
                elem_id="data-upload",
            )
            with gr.Row():
                dataset = gr.Dropdown(
                    label="Your uploaded files",
                    info="Every file you upload is kept here, so you can pick it again later.",
                    choices=[],
                    value=None,
                    allow_custom_value=True,
                    scale=4,
                    elem_id="data-dataset",
                )
                refresh = gr.Button("↻", size="sm", scale=0, min_width=40, elem_id="data-refresh")
            task = gr.Radio(
                choices=[(TASK_WORDS[t], t) for t in TASKS],
                value=TASKS[0],
                label="What should the model learn?",
                info="Detected from the file; change it if the guess is wrong.",
                elem_id="data-task",
            )
            with gr.Group(visible=True, elem_id="data-text-columns") as text_group:
                text_column = gr.Dropdown(
                    label="Which column holds the text?",
                    info=DataSpec.model_fields["text_column"].description,
                    choices=[],
                    allow_custom_value=True,
                    elem_id="data-text-column",
                )
                label_column = gr.Dropdown(
                    label="Which column holds the label?",
                    info=DataSpec.model_fields["label_column"].description,
                    choices=[],
                    allow_custom_value=True,
                    elem_id="data-label-column",
                )
            task_columns: dict[str, gr.Dropdown] = {}
            with gr.Group(visible=False, elem_id="data-ner-columns") as ner_group:
                for name, question in TASK_COLUMNS[:2]:
                    task_columns[name] = _picker(name, question)
            with gr.Group(visible=False, elem_id="data-chat-columns") as chat_group:
                for name, question in TASK_COLUMNS[2:]:
                    task_columns[name] = _picker(name, question)
        with gr.Column(scale=3, min_width=360):
            summary = gr.Markdown("No file yet: upload one on the left.", elem_id="data-summary")
            chart = gr.BarPlot(
                value=label_frame({}),
                x="label",
                y="rows",
                title="Rows per label · entities per type · turns per role",
                y_lim=[0, None],
                x_title="",
                y_title="count",
                height=240,
                elem_id="data-chart",
            )
    preview = gr.Dataframe(
        label=f"First {PREVIEW_ROWS} rows of the file",
        interactive=False,
        wrap=True,
        max_height=360,
        elem_id="data-preview",
    )
    pickers = list(task_columns.values())
    groups = [text_group, ner_group, chat_group]

    def read(dataset: Dataset) -> pd.DataFrame:
        return read_table(dataset.path).frame

    def show(dataset: Dataset | None, text: str | None = None, label: str | None = None) -> tuple:
        """Preview, column pickers (pre-set to the given, remembered or guessed columns), summary and chart."""
        no_chart = label_frame({})
        if dataset is None:
            empty = gr.Dropdown(choices=[], value=None)
            return pd.DataFrame(), empty, empty, "No file yet: upload one on the left.", no_chart
        try:
            frame = read(dataset)
        except DataError as exc:
            empty = gr.Dropdown(choices=[], value=None)
            return pd.DataFrame(), empty, empty, error_markdown(str(exc), f"{dataset.name} can't be read"), no_chart
        columns = [str(c) for c in frame.columns]
        task_name = detect_task(dataset.path, frame)
        if task_name != "text-classification":
            # The summary of the detected task; its own pickers are filled by task_view, which runs next.
            message, chart_data = check(dataset, task_name, {})
            empty = gr.Dropdown(choices=columns, value=None)
            return frame.head(PREVIEW_ROWS), empty, empty, message, chart_data
        if text not in columns or label not in columns:
            text, label = dataset.text_column, dataset.label_column
        if text not in columns or label not in columns:
            text, label = _guess(frame)
        message, chart_data = check(dataset, task_name, {"text_column": text, "label_column": label})
        pickers_ = gr.Dropdown(choices=columns, value=text), gr.Dropdown(choices=columns, value=label)
        return frame.head(PREVIEW_ROWS), *pickers_, message, chart_data

    def check(dataset: Dataset, task_name: str, columns: dict[str, str | None]) -> tuple[str, pd.DataFrame]:
        try:
            summary = inspect_task_data(task_name, data_spec(str(dataset.path), task_name, columns))
        except (DataError, ValueError) as exc:
            message = error_markdown(str(exc), f"{dataset.name} can't be used for training yet")
            return message, label_frame({})
        if task_name == "token-classification":
            return ner_summary_markdown(summary, dataset.name), task_frame(summary)
        if task_name == "chat":
            return chat_summary_markdown(summary, dataset.name), task_frame(summary)
        ctx.datasets.remember_columns(dataset.id, dataset.owner, summary["text_column"], summary["label_column"])
        return summary_markdown(summary, dataset.name), label_frame(summary)

    def task_pickers(dataset: Dataset | None, task_name: str) -> tuple:
        """The task radio, the task's own column pickers (choices from the file) and which picker group shows."""
        columns: list[str] = []
        if dataset is not None:
            try:
                columns = [str(c) for c in read(dataset).columns]
            except DataError:
                columns = []
        conll = dataset is not None and (
            dataset.path.suffix.lower() in CONLL_SUFFIXES or task_name == "token-classification" and not columns
        )
        choices = {name: columns for name in task_columns}
        if conll or (task_name == "token-classification" and dataset and dataset.format in ("tsv", "csv")):
            # CoNLL has no named fields: tokens are the first column, the tag column is picked by number.
            choices["tokens_column"] = []
            choices["tags_column"] = [str(i) for i in range(2, max(len(columns), 2) + 1)]
        updates = [gr.Dropdown(choices=choices[name], value=None) for name in task_columns]
        shown = [gr.Group(visible=task_name == t) for t in TASKS]
        return gr.Radio(value=task_name), *updates, *shown

    def task_view(dataset_id: str | None, request: gr.Request):
        """After a dataset is shown: its detected task and that task's column pickers."""
        owner = owner_of(ctx, request)
        dataset = ctx.datasets.get(dataset_id, owner) if dataset_id else None
        frame = None
        if dataset is not None:
            try:
                frame = read(dataset)
            except DataError:
                frame = None
        task_name = detect_task(dataset.path, frame) if dataset is not None else TASKS[0]
        return task_pickers(dataset, task_name)

    def list_datasets(current: str | None, request: gr.Request):
        """The owner's uploaded files, keeping the current pick (else the newest), shown with its summary."""
        owner = owner_of(ctx, request)
        datasets = ctx.datasets.list(owner)
        picked = next((d for d in datasets if d.id == current), datasets[0] if datasets else None)
        picker = gr.Dropdown(choices=dataset_choices(datasets), value=picked.id if picked else None)
        return picker, *show(picked)

    def upload_dataset(path: str | None, request: gr.Request):
        """Keep an uploaded file as one of the owner's datasets and show it; a file that can't be read is not kept."""
        owner = owner_of(ctx, request)
        if not path:
            return (
                gr.skip(),
                gr.skip(),
                gr.skip(),
                gr.skip(),
                "No file received; drop a file on the box again.",
                gr.skip(),
            )
        name = Path(path).name
        try:
            table = read_table(path)
        except DataError as exc:
            message = error_markdown(str(exc), f"{name} can't be read")
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), message, gr.skip()
        columns = [str(c) for c in table.frame.columns]
        file_format = "conll" if Path(path).suffix.lower() in CONLL_SUFFIXES else table.format
        dataset = ctx.datasets.add(owner, path, name, format=file_format, rows=len(table.frame), columns=columns)
        picker = gr.Dropdown(choices=dataset_choices(ctx.datasets.list(owner)), value=dataset.id)
        return picker, *show(dataset)

    def open_dataset(dataset_id: str | None, request: gr.Request):
        """Show one of the owner's datasets: preview, column pickers, summary and label chart."""
        owner = owner_of(ctx, request)
        dataset = ctx.datasets.get(dataset_id, owner) if dataset_id else None
        if dataset_id and dataset is None:
            raise user_error(f"no uploaded file {dataset_id!r}; pick one from the list or upload it again")
        return show(dataset)

    def check_dataset(
        dataset_id: str | None,
        text: str | None,
        label: str | None,
        task_name: str | None,
        tokens_column: str | None,
        tags_column: str | None,
        messages_column: str | None,
        instruction_column: str | None,
        input_column: str | None,
        output_column: str | None,
        request: gr.Request,
    ):
        """The validation summary and the counts chart of a dataset with this task and column mapping."""
        owner = owner_of(ctx, request)
        dataset = ctx.datasets.get(dataset_id, owner) if dataset_id else None
        if dataset is None:
            return "No file yet: upload one on the left.", label_frame({})
        columns = {k: v for k, v in locals().items() if k.endswith("_column")}
        return check(dataset, task_name or TASKS[0], {"text_column": text, "label_column": label, **columns})

    def change_task(dataset_id: str | None, task_name: str, request: gr.Request):
        """The user overrode the detected task: that task's pickers, summary and chart."""
        owner = owner_of(ctx, request)
        dataset = ctx.datasets.get(dataset_id, owner) if dataset_id else None
        radio, *rest = task_pickers(dataset, task_name)
        if dataset is None:
            return *rest, gr.skip(), gr.skip()
        columns = {"text_column": dataset.text_column, "label_column": dataset.label_column}
        return *rest, *check(dataset, task_name, columns if task_name == TASKS[0] else {})

    shown = [preview, text_column, label_column, summary, chart]
    after = [task, *pickers, *groups]
    refresh.click(list_datasets, [dataset], [dataset, *shown], api_name="list_datasets").then(
        task_view, [dataset], after, api_visibility="private"
    )
    upload.upload(upload_dataset, [upload], [dataset, *shown], api_name="upload_dataset").then(
        task_view, [dataset], after, api_visibility="private"
    )
    dataset.input(open_dataset, [dataset], shown, api_name="open_dataset").then(
        task_view, [dataset], after, api_visibility="private"
    )
    task.input(change_task, [dataset, task], [*pickers, *groups, summary, chart], api_visibility="private")
    gr.on(
        [text_column.input, label_column.input, *(p.input for p in pickers)],
        check_dataset,
        [dataset, text_column, label_column, task, *pickers],
        [summary, chart],
        api_name="check_dataset",
        trigger_mode="always_last",
    )
    return DataTab(
        upload,
        dataset,
        text_column,
        label_column,
        summary,
        preview,
        chart,
        refresh,
        list_datasets,
        task,
        task_columns,
        task_view,
        after,
    )


def _picker(name: str, question: str) -> gr.Dropdown:
    return gr.Dropdown(
        label=question,
        info=DataSpec.model_fields[name].description,
        choices=[],
        value="",  # not None: API clients may leave the picker out (gradio_client requires None-valued inputs)
        allow_custom_value=True,
        elem_id=f"data-{name.replace('_', '-')}",
    )


def _guess(frame: pd.DataFrame) -> tuple[str | None, str | None]:
    from engine.data import guess_columns

    try:
        return guess_columns(frame)
    except DataError:
        return None, None
