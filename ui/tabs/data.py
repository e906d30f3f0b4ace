"""Data tab: upload a labeled file (kept per owner), preview it, map its columns and read the validation summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from engine.errors import DataError
from engine.spec import DataSpec
from engine.tabular import read_table
from ui.context import AppContext
from ui.tabs.common import owner_of, user_error
from ui.views import error_markdown, label_frame, summary_markdown, when
from worker.uploads import Dataset

FILE_TYPES = [".csv", ".tsv", ".tab", ".txt", ".json", ".jsonl", ".ndjson", ".parquet", ".pq"]
PREVIEW_ROWS = 20
START_HERE = (
    "**Start here.** Drop a file of labeled examples on the box at the left: one row per example, one column "
    "with the text and one with its label (for instance a review and `positive`/`negative`). CSV, TSV, JSON, "
    "JSONL and Parquet files work; the columns can have any names."
)


@dataclass
class DataTab:
    """The components other tabs read: the picked dataset and its column mapping."""

    upload: gr.File
    dataset: gr.Dropdown
    text_column: gr.Dropdown
    label_column: gr.Dropdown
    summary: gr.Markdown
    preview: gr.Dataframe
    chart: gr.BarPlot
    refresh: gr.Button
    on_load: Callable[..., tuple]  # (current dataset id, request) -> [dataset, *shown]; run when the page opens


def dataset_choices(datasets: list[Dataset]) -> list[tuple[str, str]]:
    """(label, id) pairs for the dataset picker, newest first."""
    return [
        (f"{d.name} · {d.rows if d.rows is not None else '?'} rows · uploaded {when(d.created_at)}", d.id)
        for d in datasets
    ]


def build(ctx: AppContext) -> DataTab:
    """Lay out the Data tab and wire its events."""
    gr.Markdown(START_HERE, elem_classes=["pg-intro"])
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            upload = gr.File(
                label="Drop a labeled file here (CSV, TSV, JSON, JSONL, Parquet)",
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
        with gr.Column(scale=3, min_width=360):
            summary = gr.Markdown("No file yet: upload one on the left.", elem_id="data-summary")
            chart = gr.BarPlot(
                value=label_frame({}),
                x="label",
                y="rows",
                title="Rows per label",
                y_lim=[0, None],
                x_title="label",
                y_title="rows",
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

    def show(dataset: Dataset | None, text: str | None = None, label: str | None = None) -> tuple:
        """Preview, column pickers (pre-set to the given, remembered or guessed columns), summary and chart."""
        no_chart = label_frame({})
        if dataset is None:
            empty = gr.Dropdown(choices=[], value=None)
            return pd.DataFrame(), empty, empty, "No file yet: upload one on the left.", no_chart
        try:
            frame = read_table(dataset.path).frame
        except DataError as exc:
            empty = gr.Dropdown(choices=[], value=None)
            return pd.DataFrame(), empty, empty, error_markdown(str(exc), f"{dataset.name} can't be read"), no_chart
        columns = [str(c) for c in frame.columns]
        if text not in columns or label not in columns:
            text, label = dataset.text_column, dataset.label_column
        if text not in columns or label not in columns:
            text, label = _guess(frame)
        message, chart_data = check(dataset, text, label)
        pickers = gr.Dropdown(choices=columns, value=text), gr.Dropdown(choices=columns, value=label)
        return frame.head(PREVIEW_ROWS), *pickers, message, chart_data

    def check(dataset: Dataset, text: str | None, label: str | None) -> tuple[str, pd.DataFrame]:
        try:
            summary = _summary(dataset, text or None, label or None)
        except DataError as exc:
            message = error_markdown(str(exc), f"{dataset.name} can't be used for training yet")
            return message, label_frame({})
        ctx.datasets.remember_columns(dataset.id, dataset.owner, summary["text_column"], summary["label_column"])
        return summary_markdown(summary, dataset.name), label_frame(summary)

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
        dataset = ctx.datasets.add(owner, path, name, format=table.format, rows=len(table.frame), columns=columns)
        picker = gr.Dropdown(choices=dataset_choices(ctx.datasets.list(owner)), value=dataset.id)
        return picker, *show(dataset)

    def open_dataset(dataset_id: str | None, request: gr.Request):
        """Show one of the owner's datasets: preview, column pickers, summary and label chart."""
        owner = owner_of(ctx, request)
        dataset = ctx.datasets.get(dataset_id, owner) if dataset_id else None
        if dataset_id and dataset is None:
            raise user_error(f"no uploaded file {dataset_id!r}; pick one from the list or upload it again")
        return show(dataset)

    def check_dataset(dataset_id: str | None, text: str | None, label: str | None, request: gr.Request):
        """The validation summary and label distribution of a dataset with this column mapping."""
        owner = owner_of(ctx, request)
        dataset = ctx.datasets.get(dataset_id, owner) if dataset_id else None
        if dataset is None:
            return "No file yet: upload one on the left.", label_frame({})
        return check(dataset, text, label)

    shown = [preview, text_column, label_column, summary, chart]
    refresh.click(list_datasets, [dataset], [dataset, *shown], api_name="list_datasets")
    upload.upload(upload_dataset, [upload], [dataset, *shown], api_name="upload_dataset")
    dataset.input(open_dataset, [dataset], shown, api_name="open_dataset")
    gr.on(
        [text_column.input, label_column.input],
        check_dataset,
        [dataset, text_column, label_column],
        [summary, chart],
        api_name="check_dataset",
        trigger_mode="always_last",
    )
    return DataTab(upload, dataset, text_column, label_column, summary, preview, chart, refresh, list_datasets)


def _guess(frame: pd.DataFrame) -> tuple[str | None, str | None]:
    from engine.data import guess_columns

    try:
        return guess_columns(frame)
    except DataError:
        return None, None


def _summary(dataset: Dataset, text: str | None, label: str | None) -> dict[str, Any]:
    from engine.data import inspect_data

    # No tokenizer here (no tokenizing in the web process): lengths are in words; the report counts tokens.
    return inspect_data(DataSpec(train=str(dataset.path), text_column=text, label_column=label))
