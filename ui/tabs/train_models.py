"""The Train tab's base models: those that can learn a task, and the one that reads the picked file, with why."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gradio as gr

from engine.catalog import list_models
from engine.errors import DataError
from engine.language import fitting_for_language
from engine.tasks import get_task, task_names
from ui.context import AppContext
from ui.tabs.common import owner_of
from ui.tabs.data import data_spec


def human_count(count: int) -> str:
    """22713216 -> '22.7M'."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.1f}{unit}"
    return str(count)


def model_choices(task: str) -> list[tuple[str, str]]:
    """Catalog models that can learn `task`, labelled with what they are and how big."""
    choices = []
    for row in list_models():
        if task not in row["tasks"]:
            continue
        size = f"{row['disk_bytes'] / 2**20:.0f} MB on disk" if row["available_offline"] else "not installed"
        choices.append((f"{row['name']} · {human_count(row['parameters'])} parameters · {size}", row["name"]))
    return choices


def language_of(path: str, task: str, columns: dict[str, Any]) -> dict[str, Any]:
    """The language section of the data summary (scripts, no tokenizer) of a training file mapped for `task`."""
    fields = get_task(task).column_fields
    try:
        stamp = Path(path).stat().st_mtime_ns
    except OSError:
        return {}
    return _language_cached(path, stamp, task, tuple((name, columns.get(name) or None) for name in fields))


@functools.lru_cache(maxsize=64)
def _language_cached(path: str, stamp: int, task: str, columns: tuple) -> dict[str, Any]:
    try:
        return get_task(task).inspect(data_spec(path, task, dict(columns))).get("language") or {}
    except (DataError, ValueError):
        return {}  # the Data tab says what is wrong with the file


def fit_model(
    ctx: AppContext,
    dataset_id: str | None,
    task: str,
    text_column: str | None,
    label_column: str | None,
    tokens_column: str | None = None,
    tags_column: str | None = None,
    messages_column: str | None = None,
    instruction_column: str | None = None,
    input_column: str | None = None,
    output_column: str | None = None,
    request: gr.Request = None,
):
    """The base model that reads the picked file (the multilingual one for Chinese, say), and why in words."""
    dataset = ctx.datasets.get(dataset_id, owner_of(ctx, request)) if dataset_id else None
    if dataset is None or task not in task_names():
        return gr.skip(), ""
    columns = {name: value for name, value in locals().items() if name.endswith("_column")}
    model, why = fitting_for_language(task, language_of(str(dataset.path), task, columns))
    note = f"ℹ {why[:1].upper()}{why[1:]}; pick another model to override." if why else ""
    return gr.update(value=model), note
