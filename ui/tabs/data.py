"""Data tab: upload a labeled file (kept per owner), preview it, map its columns and read the validation summary;
delete a file no longer needed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from engine.encodings import ENCODING_NAMES
from engine.errors import DataError
from engine.report_views import label_frame
from engine.spec import DataSpec
from engine.tabular import EXTENSIONS, read_table
from engine.tasks import Column, all_tasks, default_task, detect_task, get_task, own_format_suffixes, task_names
from ui.context import AppContext, inspect_task_data
from ui.tabs.common import bind, owner_of, user_error
from ui.views import EMPTY_TABLE, error_markdown, when
from worker.quotas import QuotaError
from worker.uploads import Dataset

# What the upload box accepts: every table suffix the reader knows and every task's own format (CoNLL).
FILE_TYPES = [*EXTENSIONS, *own_format_suffixes()]
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
    encoding: gr.Dropdown  # "" (guessed) or the encoding the user picked for the file


def dataset_choices(datasets: list[Dataset]) -> list[tuple[str, str]]:
    """(label, id) pairs for the dataset picker, newest first."""
    return [
        (f"{d.name} · {d.rows if d.rows is not None else '?'} {d.record_unit} · uploaded {when(d.created_at)}", d.id)
        for d in datasets
    ]


def data_spec(path: str, task: str, columns: dict[str, str | None], encoding: str | None = None) -> DataSpec:
    """The data part of a job spec for `task`: only that task's columns, empty ones left to be guessed."""
    fields = {name: columns.get(name) or None for name in get_task(task).column_fields}
    return DataSpec(train=path, encoding=encoding or None, **fields)


def extra_columns() -> list[Column]:
    """The column pickers beyond the default task's text/label pair, once each, in the tasks' order."""
    seen = set(default_task().column_fields)
    out = []
    for task in all_tasks():
        for column in task.columns:
            if column.field not in seen:
                seen.add(column.field)
                out.append(column)
    return out


def task_column_fields() -> list[str]:
    """The DataSpec fields of the extra column pickers, in the order of `DataTab.task_columns`."""
    return [column.field for column in extra_columns()]


def read(dataset: Dataset, encoding: str | None = None) -> pd.DataFrame:
    """The uploaded file as a table (decoded as `encoding`, else as guessed); DataError when it can't be read."""
    return read_table(dataset.path, encoding=encoding or None).frame


def show(
    ctx: AppContext,
    dataset: Dataset | None,
    text: str | None = None,
    label: str | None = None,
    encoding: str | None = None,
) -> tuple:
    """Preview, column pickers (pre-set to the given, remembered or guessed columns), summary and chart."""
    no_chart = label_frame({})
    if dataset is None:
        empty = gr.Dropdown(choices=[], value=None)
        return EMPTY_TABLE, empty, empty, "No file yet: upload one on the left.", no_chart
    try:
        frame = read(dataset, encoding)
    except DataError as exc:
        empty = gr.Dropdown(choices=[], value=None)
        return EMPTY_TABLE, empty, empty, error_markdown(str(exc), f"{dataset.name} can't be read"), no_chart
    columns = [str(c) for c in frame.columns]
    task_name = detect_task(dataset.path, frame)
    if task_name != default_task().name:
        # The summary of the detected task; its own pickers are filled by task_view, which runs next.
        message, chart_data = check(ctx, dataset, task_name, {}, encoding)
        empty = gr.Dropdown(choices=columns, value=None)
        return preview(dataset, frame, task_name), empty, empty, message, chart_data
    if text not in columns or label not in columns:
        text, label = dataset.text_column, dataset.label_column
    if text not in columns or label not in columns:
        text, label = _guess(frame)
    message, chart_data = check(ctx, dataset, task_name, {"text_column": text, "label_column": label}, encoding)
    pickers = gr.Dropdown(choices=columns, value=text), gr.Dropdown(choices=columns, value=label)
    return preview(dataset, frame, task_name), *pickers, message, chart_data


def preview(dataset: Dataset, frame: pd.DataFrame, task_name: str) -> pd.DataFrame:
    """The first records as the task reads them: CoNLL sentences with their tags, chat turns as lines."""
    return get_task(task_name).preview(dataset.path, frame, PREVIEW_ROWS)[0]


def check(
    ctx: AppContext, dataset: Dataset, task_name: str, columns: dict[str, str | None], encoding: str | None = None
) -> tuple[str, pd.DataFrame]:
    """The summary and counts chart of a dataset for one task; text/label columns that check out are remembered."""
    try:
        summary = inspect_task_data(task_name, data_spec(str(dataset.path), task_name, columns, encoding))
    except (DataError, ValueError) as exc:
        message = error_markdown(str(exc), f"{dataset.name} can't be used for training yet")
        return message, label_frame({})
    if task_name == default_task().name:
        ctx.datasets.remember_columns(dataset.id, dataset.owner, summary["text_column"], summary["label_column"])
    return get_task(task_name).summary_view(summary, dataset.name)


def task_pickers(dataset: Dataset | None, task_name: str) -> tuple:
    """The task radio, the task's own column pickers (choices from the file) and which picker group shows."""
    columns: list[str] = []
    if dataset is not None:
        try:
            columns = [str(c) for c in read(dataset).columns]
        except DataError:
            columns = []
    task = get_task(task_name)
    fields = task_column_fields()
    choices = {name: columns for name in fields}
    own_format = task.file_format is not None and dataset is not None and len(task.columns) >= 2
    if own_format and (dataset.format == task.file_format or not columns or dataset.format in ("tsv", "csv")):
        # CoNLL has no named fields: tokens are the first column, the tag column is picked by number.
        choices[task.columns[0].field] = []
        choices[task.columns[1].field] = [str(i) for i in range(2, max(len(columns), 2) + 1)]
    updates = [gr.Dropdown(choices=choices[name], value=None) for name in fields]
    shown = [gr.Group(visible=task_name == name) for name in task_names()]
    return gr.Radio(value=task_name), *updates, *shown


def task_view(ctx: AppContext, dataset_id: str | None, request: gr.Request):
    """After a dataset is shown: its detected task and that task's column pickers."""
    owner = owner_of(ctx, request)
    dataset = ctx.datasets.get(dataset_id, owner) if dataset_id else None
    frame = None
    if dataset is not None:
        try:
            frame = read(dataset)
        except DataError:
            frame = None
    task_name = detect_task(dataset.path, frame) if dataset is not None else default_task().name
    return task_pickers(dataset, task_name)


def list_datasets(ctx: AppContext, current: str | None, request: gr.Request):
    """The owner's uploaded files, keeping the current pick (else the newest), shown with its summary."""
    owner = owner_of(ctx, request)
    datasets = ctx.datasets.list(owner)
    picked = next((d for d in datasets if d.id == current), datasets[0] if datasets else None)
    picker = gr.Dropdown(choices=dataset_choices(datasets), value=picked.id if picked else None)
    return picker, *show(ctx, picked)


def upload_dataset(ctx: AppContext, path: str | None, request: gr.Request):
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
        dataset, _ = ctx.datasets.register(owner, path, name)
    except DataError as exc:
        # Nothing stays picked: the last good file must not look like the one just dropped, nor be trained on.
        problem = "is over your disk quota" if isinstance(exc, QuotaError) else "can't be read"
        message = error_markdown(str(exc), f"{name} {problem}; it was not kept")
        picker = gr.Dropdown(choices=dataset_choices(ctx.datasets.list(owner)), value=None)
        empty = gr.Dropdown(choices=[], value=None)
        return picker, EMPTY_TABLE, empty, empty, message, label_frame({})
    picker = gr.Dropdown(choices=dataset_choices(ctx.datasets.list(owner)), value=dataset.id)
    return picker, *show(ctx, dataset)


def open_dataset(ctx: AppContext, dataset_id: str | None, request: gr.Request, encoding: str | None = None):
    """Show one of the owner's datasets: preview, column pickers, summary and label chart."""
    owner = owner_of(ctx, request)
    dataset = ctx.datasets.get(dataset_id, owner) if dataset_id else None
    if dataset_id and dataset is None:
        raise user_error(f"no uploaded file {dataset_id!r}; pick one from the list or upload it again")
    return show(ctx, dataset, encoding=encoding)


def decode_dataset(ctx: AppContext, dataset_id: str | None, encoding: str | None, request: gr.Request):
    """Read the picked file again in the encoding the user chose (empty: guessed), when the guess was wrong."""
    return open_dataset(ctx, dataset_id, request, encoding)


def check_dataset(
    ctx: AppContext,
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
    encoding: str | None = None,
    request: gr.Request = None,
):
    """The validation summary and the counts chart of a dataset with this task and column mapping."""
    owner = owner_of(ctx, request)
    dataset = ctx.datasets.get(dataset_id, owner) if dataset_id else None
    if dataset is None:
        return "No file yet: upload one on the left.", label_frame({})
    columns = {k: v for k, v in locals().items() if k.endswith("_column")}
    mapping = {"text_column": text, "label_column": label, **columns}
    return check(ctx, dataset, task_name or default_task().name, mapping, encoding)


def change_task(
    ctx: AppContext, dataset_id: str | None, task_name: str, encoding: str | None = None, request: gr.Request = None
):
    """The user overrode the detected task: that task's pickers, summary and chart."""
    owner = owner_of(ctx, request)
    dataset = ctx.datasets.get(dataset_id, owner) if dataset_id else None
    radio, *rest = task_pickers(dataset, task_name)
    if dataset is None:
        return *rest, gr.skip(), gr.skip()
    columns = {"text_column": dataset.text_column, "label_column": dataset.label_column}
    return *rest, *check(ctx, dataset, task_name, columns if task_name == default_task().name else {}, encoding)


def delete_dataset(ctx: AppContext, dataset_id: str | None, request: gr.Request):
    """Delete the picked upload (record and file); refused with the reason while a waiting or running job reads it.
    Returns the picker on the newest file left, shown as after a refresh."""
    owner = owner_of(ctx, request)
    if not dataset_id:
        raise user_error("no file picked; pick the uploaded file to delete first")
    try:
        dataset = ctx.delete_dataset(dataset_id, owner)
    except (LookupError, ValueError) as exc:
        raise user_error(str(exc)) from exc
    gr.Info(f"{dataset.name} deleted")
    return list_datasets(ctx, None, request)


def build(ctx: AppContext) -> DataTab:
    """Lay out the Data tab and wire its events."""
    gr.Markdown(START_HERE, elem_classes=["pg-intro"])
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            upload, dataset, refresh, deleting = _file_pickers()
            encoding = gr.Dropdown(
                choices=[("Guess from the file", ""), ("UTF-8", "utf-8")]
                + [(name, code) for code, name in ENCODING_NAMES.items()],
                value="",
                label="Text encoding",
                info="If accents or characters look wrong in the preview, pick the encoding the file was saved in.",
                elem_id="data-encoding",
            )
            task = gr.Radio(
                choices=[(task.title, task.name) for task in all_tasks()],
                value=default_task().name,
                label="What should the model learn?",
                info="Detected from the file; change it if the guess is wrong.",
                elem_id="data-task",
            )
            text_column, label_column, task_columns, groups = _column_pickers()
        with gr.Column(scale=3, min_width=360):
            summary = gr.Markdown("No file yet: upload one on the left.", elem_id="data-summary")
            chart = _counts_chart()
    preview = gr.Dataframe(
        label=f"First {PREVIEW_ROWS} rows of the file",
        interactive=False,
        wrap=True,
        max_height=360,
        elem_id="data-preview",
    )
    pickers = list(task_columns.values())
    shown = [preview, text_column, label_column, summary, chart]
    after = [task, *pickers, *groups]
    on_load, view = bind(ctx, list_datasets), bind(ctx, task_view)
    refresh.click(on_load, [dataset], [dataset, *shown], api_name="list_datasets").then(
        view, [dataset], after, api_visibility="private"
    )
    guessed = lambda: ""  # noqa: E731 - another file starts with its encoding guessed
    upload.upload(bind(ctx, upload_dataset), [upload], [dataset, *shown], api_name="upload_dataset").then(
        view, [dataset], after, api_visibility="private"
    ).then(guessed, None, encoding, api_visibility="private")
    dataset.input(bind(ctx, open_dataset), [dataset], shown, api_name="open_dataset").then(
        view, [dataset], after, api_visibility="private"
    ).then(guessed, None, encoding, api_visibility="private")
    encoding.input(bind(ctx, decode_dataset), [dataset, encoding], shown, api_name="decode_dataset").then(
        view, [dataset], after, api_visibility="private"
    )
    _wire_delete(ctx, deleting, dataset, [dataset, *shown], (view, [dataset], after))
    task_shown = [*pickers, *groups, summary, chart]
    task.input(bind(ctx, change_task), [dataset, task, encoding], task_shown, api_visibility="private")
    gr.on(
        [text_column.input, label_column.input, *(p.input for p in pickers)],
        bind(ctx, check_dataset),
        [dataset, text_column, label_column, task, *pickers, encoding],
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
        on_load,
        task,
        task_columns,
        view,
        after,
        encoding,
    )


def _wire_delete(ctx: AppContext, deleting: tuple, dataset: gr.Dropdown, outputs: list, then_view: tuple) -> None:
    """Deleting the picked file takes a second click, then shows the newest file left."""
    delete, confirm, keep = deleting

    def asking(on: bool) -> tuple:
        return gr.Button(visible=not on), gr.Button(visible=on), gr.Button(visible=on)

    delete.click(lambda: asking(True), None, [*deleting], api_visibility="private")
    keep.click(lambda: asking(False), None, [*deleting], api_visibility="private")
    confirm.click(lambda: asking(False), None, [*deleting], api_visibility="private")
    confirm.click(bind(ctx, delete_dataset), [dataset], outputs, api_name="delete_dataset").success(
        *then_view, api_visibility="private"
    )


def _file_pickers() -> tuple[gr.File, gr.Dropdown, gr.Button, tuple]:
    """The upload box, the picker of the owner's uploaded files with its refresh button, and the delete buttons."""
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
    with gr.Row():
        deleting = (
            gr.Button("Delete this file", size="sm", variant="secondary", elem_id="data-delete"),
            gr.Button("Yes, delete it", size="sm", variant="stop", visible=False, elem_id="data-delete-yes"),
            gr.Button("No, keep it", size="sm", visible=False, elem_id="data-delete-no"),
        )
    return upload, dataset, refresh, deleting


def _column_pickers() -> tuple[gr.Dropdown, gr.Dropdown, dict[str, gr.Dropdown], list[gr.Group]]:
    """The text/label pickers, the other tasks' pickers by DataSpec field, and one group of pickers per task."""
    text_column, label_column = (_picker(column.field, column.question) for column in default_task().columns)
    task_columns = {column.field: _picker(column.field, column.question) for column in extra_columns()}
    by_field = {"text_column": text_column, "label_column": label_column, **task_columns}
    groups = []
    for info in all_tasks():
        # Each task's pickers show together; a picker two tasks share is shown by the first.
        with gr.Group(visible=info.name == default_task().name, elem_id=f"data-columns-{info.name}") as group:
            for column in info.columns:
                picker = by_field[column.field]
                if not picker.is_rendered:
                    picker.render()
        groups.append(group)
    return text_column, label_column, task_columns, groups


def _counts_chart() -> gr.BarPlot:
    return gr.BarPlot(
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


def _picker(name: str, question: str) -> gr.Dropdown:
    # Made unrendered: each is placed inside the column group of the first task that reads it.
    return gr.Dropdown(
        render=False,
        label=question,
        info=DataSpec.model_fields[name].description,
        choices=[],
        value="",  # not None: API clients may leave the picker out (gradio_client requires None-valued inputs)
        allow_custom_value=True,
        elem_id=f"data-{name.replace('_', '-')}",
    )


def _guess(frame: pd.DataFrame) -> tuple[str | None, str | None]:
    from engine.tasks.text_classification.data import guess_columns

    try:
        return guess_columns(frame)
    except DataError:
        return None, None
