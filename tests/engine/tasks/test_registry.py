"""The task registry is the one task switch: a task registered from outside shows up at every edge unedited."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.spec import JobSpec
from engine.tasks import (
    all_tasks,
    detect_task,
    file_format_of,
    get_task,
    register,
    task_names,
    task_of_model,
    tasks_for_architecture,
    unregister,
)
from engine.tasks.text_classification import TEXT_CLASSIFICATION
from engine.tasks.token_classification import TOKEN_CLASSIFICATION

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# A fourth task: review helpfulness, trained like a text classifier, with its own name, title and default model.
TOY = dataclasses.replace(
    TEXT_CLASSIFICATION,
    name="review-helpfulness",
    title="Review helpfulness: was this review useful?",
    headline_name="macro F1 (helpfulness)",
)


@pytest.fixture
def toy_task() -> Iterator:
    register(TOY)
    try:
        yield TOY
    finally:
        unregister(TOY.name)
    assert TOY.name not in task_names()


def test_the_built_in_tasks_are_registered_in_order_and_unknown_names_are_refused():
    assert task_names()[:3] == ["text-classification", "token-classification", "chat"]
    assert [t.name for t in all_tasks()] == task_names()
    with pytest.raises(ValueError, match=r"unknown task 'summarise'; tasks are 'text-classification'"):
        get_task("summarise")
    with pytest.raises(ValueError, match=r"task: Value error, unknown task 'summarise'"):
        JobSpec.from_dict({"task": "summarise", "data": {"train": "a.csv"}})


def test_a_registered_task_reaches_the_spec_the_cli_the_rest_schema_and_the_train_tab(toy_task, tmp_path: Path):
    spec = JobSpec.from_dict({"task": TOY.name, "data": {"train": "a.csv", "text_column": "review"}})
    assert (spec.task, spec.base_model, spec.task_info()) == (TOY.name, "minilm-l6", TOY)
    assert TOY.name in JobSpec.model_json_schema()["properties"]["task"]["enum"]
    assert TOY.name in tasks_for_architecture("encoder")

    from ui.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    train_action = next(action for action in commands["train"]._actions if action.dest == "task")
    assert TOY.name in train_action.choices and "review helpfulness" in train_action.help

    from fastapi import FastAPI

    from ui.server import api_router

    app = FastAPI()
    app.include_router(api_router(None))  # routes hold the context; the schema needs none
    body = app.openapi()["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert TOY.name in body["oneOf"][0]["properties"]["task"]["enum"]

    import gradio as gr

    from ui.context import AppContext
    from ui.tabs import data, train
    from worker.settings import Settings

    ctx = AppContext(Settings(home=tmp_path / "home", queue=f"test-{uuid.uuid4().hex[:8]}"))
    try:
        with gr.Blocks() as blocks:
            data_tab = data.build(ctx)
            train.build(ctx, data_tab)
        train_radio = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "train-task")
        assert ("Review helpfulness", TOY.name) in [tuple(choice) for choice in train_radio.choices]
        assert (TOY.title, TOY.name) in [tuple(choice) for choice in data_tab.task.choices]
    finally:
        ctx.close()


def test_columns_and_formats_are_checked_against_the_task_that_reads_them():
    with pytest.raises(ValueError, match=r"data\.tokens_column is for task 'token-classification', not 'chat'"):
        JobSpec.from_dict({"task": "chat", "data": {"train": "a.jsonl", "tokens_column": "words"}})
    with pytest.raises(ValueError, match=r"data\.format 'conll' is read by task 'token-classification'"):
        JobSpec.from_dict({"data": {"train": "a.txt", "format": "conll"}})
    chat = JobSpec.from_dict({"task": "chat", "data": {"train": "a.jsonl"}, "params": {"batch_size": 2}})
    assert (chat.base_model, chat.params.max_length, chat.params.batch_size) == ("smollm2-135m-instruct", 512, 2)


def test_files_and_model_folders_map_to_their_task():
    assert detect_task(FIXTURES / "ner" / "en.conll") == TOKEN_CLASSIFICATION.name
    assert file_format_of(FIXTURES / "ner" / "en.conll", "tsv") == "conll"
    assert file_format_of(FIXTURES / "reviews.csv", "csv") == "csv"
    assert task_of_model({"architectures": ["BertForTokenClassification"]}).name == "token-classification"
    assert task_of_model({"architectures": ["LlamaForCausalLM"]}).name == "chat"
    assert task_of_model({"architectures": ["BertForSequenceClassification"]}).name == "text-classification"
