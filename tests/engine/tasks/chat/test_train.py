"""Chat fine-tuning on the packaged SmolLM2: LoRA trains only adapters, merged export matches, a tiny job reports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from engine.catalog import resolve_model
from engine.predict import Predictor
from engine.spec import JobSpec
from engine.tasks.chat.data import tokenize_conversation
from engine.tasks.chat.generation import generate_reply
from engine.tasks.chat.recipe import Chat
from engine.train import train

FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "chat" / "support.jsonl"
pytestmark = pytest.mark.slow
CONVERSATION = [
    {"role": "user", "content": "How do I export my notes?"},
    {"role": "assistant", "content": "Hi there! Open Settings, then Export. — Ava from Support"},
]


def _spec(**params) -> JobSpec:
    return JobSpec.from_dict({"task": "chat", "data": {"train": str(FIXTURE)}, "params": params})


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))


def _steps(model, tokenizer, n: int, lr: float) -> None:
    row = tokenize_conversation(tokenizer, CONVERSATION, max_length=128)
    batch = {k: torch.tensor([v]) for k, v in row.items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(n):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def test_lora_trains_adapters_only_and_the_merged_export_generates_the_same(tokenizer, tmp_path):
    recipe = Chat()
    torch.manual_seed(0)
    model = recipe.build_model(_spec(method="lora", lora_rank=8), resolve_model("smollm2-135m-instruct"), [])
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    base_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    adapters_before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    _steps(model, tokenizer, 3, lr=5e-3)

    for name, param in model.named_parameters():
        if name in base_before:
            assert torch.equal(param, base_before[name]), f"base weight {name} changed"
    changed = [
        n for n, p in model.named_parameters() if n in adapters_before and not torch.equal(p, adapters_before[n])
    ]
    assert len(changed) == len(adapters_before)

    prompt = CONVERSATION[:1]
    with_adapter = generate_reply(model, tokenizer, prompt, max_new_tokens=12)
    model_dir = recipe.save(model, tokenizer, tmp_path)
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(model_dir)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert generate_reply(merged, tokenizer, prompt, max_new_tokens=12).text == with_adapter.text


def test_tiny_chat_job_reports_perplexity_and_generations(tmp_path):
    small = tmp_path / "small.jsonl"
    small.write_text("".join(FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)[:24]), encoding="utf-8")
    spec = JobSpec.from_dict(
        {
            "task": "chat",
            "data": {"train": str(small), "validation_fraction": 0.1, "test_fraction": 0.1},
            "params": {"epochs": 2, "batch_size": 4, "max_length": 160, "learning_rate": 1e-3, "seed": 1},
        }
    )
    events = []
    result = train(spec, tmp_path / "chat", on_event=events.append)
    report = json.loads((tmp_path / "chat" / "report.json").read_text(encoding="utf-8"))
    m = report["metrics"]
    assert m["perplexity"] == pytest.approx(math.exp(m["loss"]), rel=1e-3)
    assert m["base_perplexity"] == pytest.approx(math.exp(m["base_loss"]), rel=1e-3)
    # Learning the support style lowers held-out loss even after a few steps.
    assert m["loss"] < m["base_loss"]
    assert report["generations"] and all(
        {"prompt", "reference", "base", "fine_tuned"} <= set(g) for g in report["generations"]
    )
    assert report["train"]["method"] == "lora"
    assert report["train"]["trainable_parameters"] < 0.1 * report["train"]["total_parameters"]
    assert any(e.kind == "eval" and e.loss is not None for e in events)
    answer = Predictor(result.model_dir).chat(
        [{"role": "user", "content": "Can I sync across devices?"}], max_new_tokens=16
    )
    assert isinstance(answer, str) and answer.strip()
