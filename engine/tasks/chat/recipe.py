"""Chat: supervised fine-tuning of a causal LM on conversations (LoRA or full), loss on assistant tokens only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, PreTrainedModel, PreTrainedTokenizerBase

from engine.adapters import add_adapters
from engine.spec import JobSpec
from engine.tasks.base import Prepared, save_model_folder
from engine.tasks.chat.data import (
    ChatData,
    load_chat_data,
    prompt_messages,
    tokenize_conversation,
    tokenize_text,
)
from engine.tasks.chat.generation import distinct_2, generate_reply, mean_token_loss, perplexity
from engine.tasks.chat.report import build_chat_report

REPORT_GENERATIONS = 10
REPORT_NEW_TOKENS = 64


class Chat:
    """Recipe for `chat`."""

    metric_for_best_model = "loss"
    greater_is_better = False

    def __init__(self) -> None:
        self.model_path: str | None = None
        self.method = "lora"

    def prepare(self, spec: JobSpec, tokenizer: PreTrainedTokenizerBase) -> Prepared:
        params = spec.params
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token  # padding positions carry label -100, so any id will do
        data = load_chat_data(spec.data, tokenizer=tokenizer, max_length=params.max_length, seed=params.seed)
        splits = {name: _tokenize(data, getattr(data, name), tokenizer, params.max_length) for name in _SPLITS}
        return Prepared(splits["train"], splits["validation"], [], data.summary, raw={"data": data, **splits})

    def build_model(self, spec: JobSpec, model_path: str, labels: list[str]) -> PreTrainedModel:
        """The causal LM in fp32 (autocast does the bf16 math), wrapped in LoRA adapters for method 'lora'."""
        self.model_path = model_path
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
        self.method = spec.params.method
        return add_adapters(model, spec.params, "CAUSAL_LM")

    def collator(self, tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None) -> Any:
        return DataCollatorForSeq2Seq(
            tokenizer, padding=True, label_pad_token_id=-100, pad_to_multiple_of=pad_to_multiple_of
        )

    def compute_metrics(self, labels: list[str]) -> Any:
        return None  # the Trainer's own eval_loss is the validation metric

    def report(
        self,
        spec: JobSpec,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        prepared: Prepared,
        train_info: dict,
    ) -> dict:
        data: ChatData = prepared.raw["data"]
        held_out = list(prepared.raw["test"])
        collate = self.collator(tokenizer, None)
        prompts = [] if data.kind == "text" else [prompt_messages(list(m)) for m in data.test["messages"]]
        prompts = prompts[:REPORT_GENERATIONS]
        loss = mean_token_loss(model, collate, held_out)
        tuned = [generate_reply(model, tokenizer, prompt, max_new_tokens=REPORT_NEW_TOKENS) for prompt, _ in prompts]
        with self._base_model(model) as base:
            base_loss = mean_token_loss(base, collate, held_out)
            before = [
                generate_reply(base, tokenizer, prompt, max_new_tokens=REPORT_NEW_TOKENS) for prompt, _ in prompts
            ]
        generations = [
            {"prompt": prompt, "reference": reference, "base": b.text, "fine_tuned": t.text}
            for (prompt, reference), b, t in zip(prompts, before, tuned, strict=True)
        ]
        repetition = {  # distinct-2 of each side's answers: a reply that loops scores far below the references
            "base": distinct_2(tokenizer, [b.text for b in before]),
            "fine_tuned": distinct_2(tokenizer, [t.text for t in tuned]),
            "reference": distinct_2(tokenizer, [reference for _, reference in prompts]),
        }
        seconds = sum(t.seconds for t in tuned)
        speed = round(sum(t.new_tokens for t in tuned) / seconds, 1) if seconds else None
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        train_tokens = sum(sum(label != -100 for label in row["labels"]) for row in prepared.train)
        train_info = {
            **train_info,
            "method": self.method,
            "trainable_parameters": trainable,
            "total_parameters": total,
            "train_tokens_per_second": round(train_tokens * train_info["epochs"] / train_info["wall_seconds"], 1),
        }
        return build_chat_report(
            base_model=spec.base_model,
            loss=loss,
            perplexity=perplexity(loss),
            base_loss=base_loss,
            base_perplexity=perplexity(base_loss),
            n_held_out=len(held_out),
            generations=generations,
            generation_tokens_per_second=speed,
            repetition=repetition,
            data_summary=data.summary,
            train_info=train_info,
        )

    @contextmanager
    def _base_model(self, model: PreTrainedModel) -> Iterator[PreTrainedModel]:
        """The model before fine-tuning: the adapter switched off (LoRA), or the base weights loaded again (full)."""
        if hasattr(model, "disable_adapter"):
            with model.disable_adapter():
                yield model
            return
        base = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=torch.float32)
        yield base.to(next(model.parameters()).device)
        del base

    def save(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, output_dir: Path) -> Path:
        return save_model_folder(model, tokenizer, output_dir)

    def test_examples(self, prepared: Prepared) -> None:
        return None  # replies, not labels: the robustness check has no accuracy to measure


_SPLITS = ("train", "validation", "test")


def _tokenize(data: ChatData, split: datasets.Dataset, tokenizer, max_length: int) -> datasets.Dataset:
    if data.kind == "text":
        rows = [chunk for text in split["text"] for chunk in tokenize_text(tokenizer, text, max_length=max_length)]
    else:
        rows = [tokenize_conversation(tokenizer, list(m), max_length=max_length) for m in split["messages"]]
    return datasets.Dataset.from_list(rows)
