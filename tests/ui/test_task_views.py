"""The NER and chat pieces of the web app that need no browser: summaries, report views, spans, chat messages."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from engine.report_views import confusion_html, per_class_frame
from engine.report_views import counts_frame as task_frame
from engine.spec import JobSpec
from engine.tasks import detect_task, get_task
from engine.tasks.chat.views import chat_headline_markdown, chat_summary_markdown, generations_frame
from engine.tasks.token_classification.metrics import most_frequent_tag_baseline
from engine.tasks.token_classification.report import build_token_classification_report
from engine.tasks.token_classification.views import (
    error_kinds_markdown,
    ner_errors_frame,
    ner_headline_markdown,
    ner_summary_markdown,
)
from ui.charts import training_curves_html
from ui.tabs import train
from ui.tabs.report import headline_score
from ui.task_views import chat_messages, highlighted, spans_html
from worker.records import JobEvent


def report_score(report: dict) -> tuple[str, float | None]:
    return get_task(report["task"]).headline_name, headline_score(report)


NOW = datetime(2026, 1, 1)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOKENS = [["John", "lives", "in", "Paris"], ["Acme", "Corp", "hired", "Mary"]]
GOLD = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "I-ORG", "O", "B-PER"]]
PREDICTED = [["B-PER", "O", "O", "B-ORG"], ["B-ORG", "O", "O", "O"]]
TAGS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
CHAT_REPORT = {
    "task": "chat",
    "base_model": "smollm2-135m-instruct",
    "n_test": 4,
    "metrics": {
        "loss": 1.2,
        "perplexity": 3.32,
        "base_loss": 2.0,
        "base_perplexity": 7.39,
        "perplexity_change": -4.07,
    },
    "generations": [
        {
            "prompt": "How do I export?",
            "reference": "Use File > Export.",
            "base": "I don't know.",
            "fine_tuned": "Go to File > Export.",
        }
    ],
    "generation": {"tokens_per_second": 12.5},
    "train": {
        "method": "lora",
        "trainable_parameters": 921600,
        "total_parameters": 135436800,
        "train_tokens_per_second": 850.0,
        "wall_seconds": 75,
    },
}


@pytest.fixture
def ner_report() -> dict:
    """A real report from the engine's builder: one right entity, one wrong type, one wrong boundary, one missed."""
    return build_token_classification_report(
        base_model="minilm-l6",
        labels=TAGS,
        entity_types=["LOC", "ORG", "PER"],
        test_tokens=TOKENS,
        y_true_tags=GOLD,
        y_pred_tags=PREDICTED,
        baseline=most_frequent_tag_baseline(TOKENS, GOLD, TOKENS, PREDICTED),
        data_summary={},
        train_info={"wall_seconds": 3},
    )


def test_ner_report_view_shows_entity_scores_errors_and_the_baseline(ner_report: dict):
    headline = ner_headline_markdown(ner_report, "a tagger")
    assert "Micro F1 (entities)" in headline and "Token accuracy" in headline
    assert f"**{ner_report['metrics']['micro_f1']:.3f}**" in headline
    assert "baseline" in headline and "most frequent tag" in headline
    table = per_class_frame(ner_report)
    assert list(table["Label"]) == ["LOC", "ORG", "PER"]
    assert dict(zip(table["Label"], table["Support"], strict=True)) == {"LOC": 1, "ORG": 1, "PER": 2}
    assert "Baseline F1" in table.columns
    confusion = confusion_html(ner_report)
    assert ">O</th>" in confusion  # missed and spurious entities have their own row and column
    kinds = error_kinds_markdown(ner_report)
    assert "| Missed | 1 |" in kinds and "| Wrong type | 1 |" in kinds and "| Wrong boundary | 1 |" in kinds
    errors = ner_errors_frame(ner_report)
    wrong_type = errors[errors["Kind"] == "Wrong type"].iloc[0]
    assert (wrong_type["Entity"], wrong_type["True type"], wrong_type["Predicted"]) == ("Paris", "LOC", "ORG")
    boundary = errors[errors["Kind"] == "Wrong boundary"].iloc[0]
    assert boundary["Predicted"] == "ORG: Acme"
    assert report_score(ner_report) == ("micro F1", round(ner_report["metrics"]["micro_f1"], 3))


def test_chat_report_view_compares_base_and_fine_tuned():
    headline = chat_headline_markdown(CHAT_REPORT, "a chat model")
    assert "| Base model (not fine-tuned) | 2.0000 | 7.39 |" in headline
    assert "| **Fine-tuned** | **1.2000** | **3.32** |" in headline
    assert "Fine-tuning helped" in headline and "from 7.39 to 3.32" in headline
    assert "method **LoRA**" in headline and "921,600 trainable parameters (0.68%" in headline
    assert "850 training tokens/s" in headline
    worse = {**CHAT_REPORT, "metrics": {**CHAT_REPORT["metrics"], "perplexity": 9.0}}
    assert "No better than the base model" in chat_headline_markdown(worse, "a chat model")
    frame = generations_frame(CHAT_REPORT)
    assert list(frame.columns) == ["Prompt", "Reference", "Base model", "Fine-tuned"]
    assert frame.iloc[0].tolist() == [
        "How do I export?",
        "Use File > Export.",
        "I don't know.",
        "Go to File > Export.",
    ]
    assert report_score(CHAT_REPORT) == ("perplexity", 3.32)
    conversation = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    as_list = {**CHAT_REPORT, "generations": [{**CHAT_REPORT["generations"][0], "prompt": conversation}]}
    assert generations_frame(as_list).iloc[0]["Prompt"] == "system: Be kind.\nuser: Hi"
    one_turn = {**CHAT_REPORT, "generations": [{**CHAT_REPORT["generations"][0], "prompt": conversation[1:]}]}
    assert generations_frame(one_turn).iloc[0]["Prompt"] == "Hi"


def test_data_summaries_of_the_fixtures_read_as_sentences():
    from engine.spec import DataSpec
    from engine.tasks.chat.data import inspect_chat_data
    from engine.tasks.token_classification.data import inspect_token_data

    ner = inspect_token_data(DataSpec(train=str(FIXTURES / "ner" / "en.conll")))
    text = ner_summary_markdown(ner, "en.conll")
    assert "150 sentences" in text and "283 entities of 4 types" in text and "**LOC** (95)" in text
    assert "Tag scheme: IOB2" in text and "counted in words" not in text
    assert dict(zip(task_frame(ner)["label"], task_frame(ner)["rows"], strict=True))["PER"] == 69
    chat = inspect_chat_data(DataSpec(train=str(FIXTURES / "chat" / "support.jsonl")))
    text = chat_summary_markdown(chat, "support.jsonl")
    assert "157 conversations" in text and "194 from the assistant" in text and "52 system prompts" in text
    assert "Truncation: 0 longer than 512 tokens" in text
    assert set(task_frame(chat)["label"]) == {"system", "user", "assistant"}


def test_tasks_are_detected_from_the_file():
    from engine.tabular import read_table

    for path, task in (
        (FIXTURES / "ner" / "en.conll", "token-classification"),
        (FIXTURES / "ner" / "zh.jsonl", "token-classification"),
        (FIXTURES / "chat" / "support.jsonl", "chat"),
        (FIXTURES / "reviews.csv", "text-classification"),
    ):
        assert detect_task(path, read_table(path).frame) == task, path
    instructions = pd.DataFrame({"instruction": ["Say hi"], "output": ["Hi"]})
    assert detect_task(Path("pairs.csv"), instructions) == "chat"


def test_spans_become_highlighted_pieces_and_escaped_html():
    text = "Ada <Lovelace> met Bob in Paris."
    spans = [
        {"text": "Paris", "type": "LOC", "start": 26, "end": 31, "score": 0.9},
        {"text": "Ada <Lovelace>", "type": "PER", "start": 0, "end": 14, "score": 0.8},
    ]
    pieces = highlighted(text, spans)
    assert "".join(piece for piece, _ in pieces) == text
    assert [(p, t) for p, t in pieces if t] == [("Ada <Lovelace>", "PER"), ("Paris", "LOC")]
    page = spans_html(text, spans, ["LOC", "PER"])
    assert "&lt;Lovelace&gt;" in page and "<Lovelace>" not in page
    assert page.count('<mark class="entity"') == 2 and 'data-type="LOC"' in page


def test_chat_history_becomes_model_messages():
    history = [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": "Hello!", "metadata": None},
        {"role": "assistant", "content": ""},
    ]
    assert chat_messages(history, " Be brief. ") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
    ]
    assert chat_messages([], "") == []


def test_train_tab_builds_valid_specs_for_every_task():
    assert train.tasks() == ["text-classification", "token-classification", "chat"]
    chat_models = [name for _, name in train.model_choices("chat")]
    assert "smollm2-135m-instruct" in chat_models and "minilm-l6" not in chat_models
    assert "minilm-l6" in [name for _, name in train.model_choices("token-classification")]
    defaults = train.task_defaults("chat")
    assert (defaults["base_model"], defaults["max_length"], defaults["learning_rate"]) == (
        "smollm2-135m-instruct",
        512,
        2e-4,
    )
    params = {k: v for k, v in defaults.items() if k != "base_model"} | {"lora_rank": 8}
    spec = train.build_spec(
        "s.jsonl", "ignored", None, "chat", "smollm2-135m-instruct", params, {}, {"messages_column": "messages"}
    )
    assert spec["data"] == {
        "train": "s.jsonl",
        "messages_column": "messages",
        "instruction_column": None,
        "input_column": None,
        "output_column": None,
    }
    assert JobSpec.from_dict(spec).params.lora_rank == 8
    command = train.cli_command(spec)
    assert "--lora-rank 8" in command and "--max-length" not in command  # 512 is chat's default
    ner = train.build_spec(
        "en.conll",
        None,
        None,
        "token-classification",
        "minilm-l6",
        {"epochs": 2, "method": "lora"},
        {},
        {"tags_column": "2"},
    )
    # Every task reads the method now: LoRA on a tagger trains adapters and the tag head.
    assert ner["params"] == {"epochs": 2, "method": "lora"} and ner["data"]["tags_column"] == "2"
    assert JobSpec.from_dict(ner).task == "token-classification"


def test_chat_curves_show_the_loss_only_and_taggers_their_micro_f1():
    events = [
        JobEvent(id=1, job_id="j", attempt=1, kind="log", at=NOW, step=1, loss=2.0),
        JobEvent(
            id=2,
            job_id="j",
            attempt=1,
            kind="eval",
            at=NOW,
            step=2,
            loss=1.5,
            metrics={"micro_f1": 0.5, "accuracy": 0.9},
        ),
    ]
    chat = training_curves_html(events, 2, "chat")
    assert chat.count("<svg") == 1 and "Loss" in chat
    ner = training_curves_html(events, 2, "token-classification")
    assert ner.count("<svg") == 2 and "micro-F1" in ner and "validation accuracy" not in ner
