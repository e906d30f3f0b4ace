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
from engine.hardware import autocast_precision, device_name, resolve_precision
from engine.memory import GB, available_bytes, estimate, model_shape
from engine.spec import JobSpec
from engine.tasks.base import Prepared, save_model_folder
from engine.tasks.chat import REPETITION_PENALTY
from engine.tasks.chat.data import (
    ChatData,
    load_chat_data,
    prompt_messages,
    tokenize_conversation,
    tokenize_text,
)
from engine.tasks.chat.generation import Reply, distinct_2, generate_replies, mean_token_loss, perplexity
from engine.tasks.chat.loss import chunked_loss
from engine.tasks.chat.report import build_chat_report

REPORT_GENERATIONS = 10
REPORT_NEW_TOKENS = 64
# The report's answers are sampled as the playground samples them, from the job's seed so a run repeats exactly.
REPORT_SAMPLING = {"temperature": 0.7, "top_p": 0.9}


class Chat:
    """Recipe for `chat`."""

    metric_for_best_model = "loss"
    greater_is_better = False

    def __init__(self) -> None:
        self.model_path: str | None = None
        self.method = "lora"
        self.label_smoothing = 0.0
        self.checkpointing: str | None = None  # why activations are recomputed, for the report; None when not

    def prepare(self, spec: JobSpec, tokenizer: PreTrainedTokenizerBase) -> Prepared:
        params = spec.params
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token  # padding positions carry label -100, so any id will do
        data = load_chat_data(spec.data, tokenizer=tokenizer, max_length=params.max_length, seed=params.seed)
        splits = {name: _tokenize(data, getattr(data, name), tokenizer, params.max_length) for name in _SPLITS}
        return Prepared(splits["train"], splits["validation"], [], data.summary, raw={"data": data, **splits})

    def build_model(self, spec: JobSpec, model_path: str, labels: list[str]) -> PreTrainedModel:
        """The causal LM, wrapped in LoRA adapters for method 'lora'. Full fine-tuning keeps fp32 master weights
        (autocast does the bf16 math); under adapters the frozen base weights stay in bf16 when the job runs in bf16,
        half their memory, while peft keeps the adapters themselves in fp32."""
        self.model_path = model_path
        self.method = spec.params.method
        self.label_smoothing = spec.params.label_smoothing
        frozen_half = self.method != "full" and autocast_precision(resolve_precision(spec.params.precision)) == "bf16"
        dtype = torch.bfloat16 if frozen_half else torch.float32
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
        self.checkpointing = _checkpointing(spec, half=resolve_precision(spec.params.precision) != "fp32")
        if self.checkpointing and not spec.params.gradient_checkpointing:  # the Trainer turns on the one asked for
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        return add_adapters(model, spec.params, "CAUSAL_LM")

    def compute_loss(self, model: PreTrainedModel, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
        """The Trainer's loss: cross-entropy on assistant tokens only, the LM head run a chunk at a time."""
        with _adapter_inputs_as_they_are(model):
            return chunked_loss(model, inputs, num_items_in_batch, label_smoothing=self.label_smoothing)

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
        tuned = _answers(model, tokenizer, prompts, spec.params.seed)
        with self._base_model(model) as base:
            base_loss = mean_token_loss(base, collate, held_out)
            before = _answers(base, tokenizer, prompts, spec.params.seed)
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
            "gradient_checkpointing": self.checkpointing,
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
            decoding=_decoding(spec.params.seed),
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
        # bf16 base weights are widened first: the adapter merges at full precision and the saved model stays fp32.
        return save_model_folder(model.float(), tokenizer, output_dir)

    def test_examples(self, prepared: Prepared) -> None:
        return None  # replies, not labels: the robustness check has no accuracy to measure


_SPLITS = ("train", "validation", "test")


def _adapter_inputs_as_they_are(model: PreTrainedModel) -> Any:
    """Under autocast the adapters multiply in 16-bit whatever their input's dtype, so peft's cast of each 16-bit
    input to the adapters' fp32 (a copy per adapted layer, 4% of a step) is skipped. Not with checkpointing: its
    recomputation in the backward pass runs outside this block and must build the same tensors."""
    from peft.helpers import disable_input_dtype_casting

    device = next(model.parameters()).device.type
    active = torch.is_autocast_enabled(device) and not getattr(model, "is_activation_checkpointing", False)
    return disable_input_dtype_casting(model, active=active and hasattr(model, "peft_config"))


def _checkpointing(spec: JobSpec, *, half: bool) -> str | None:
    """'on' when the job asks for gradient checkpointing, or when its estimated peak memory would not fit in what is
    free where it trains (then saying so); None when activations are kept."""
    if spec.params.gradient_checkpointing:
        return "on"
    shape = model_shape(spec.base_model)
    if shape is None:
        return None
    need = estimate(shape, spec.params, causal_lm=True, half_precision=half).peak
    free = available_bytes(device_name())
    if need <= free:
        return None
    return f"on, automatically: the estimated peak of {need / GB:.1f} GB is more than the {free / GB:.1f} GB free"


def _decoding(seed: int) -> str:
    sampling = ", ".join(f"{name.replace('_', '-')} {value}" for name, value in REPORT_SAMPLING.items())
    return f"sampled: {sampling}, repetition penalty {REPETITION_PENALTY}, seed {seed}; batched"


def _answers(model: PreTrainedModel, tokenizer, prompts: list[tuple[list[dict], str]], seed: int) -> list[Reply]:
    conversations = [prompt for prompt, _ in prompts]
    return generate_replies(
        model, tokenizer, conversations, max_new_tokens=REPORT_NEW_TOKENS, seed=seed, **REPORT_SAMPLING
    )


def _tokenize(data: ChatData, split: datasets.Dataset, tokenizer, max_length: int) -> datasets.Dataset:
    if data.kind == "text":
        rows = [chunk for text in split["text"] for chunk in tokenize_text(tokenizer, text, max_length=max_length)]
    else:
        rows = [tokenize_conversation(tokenizer, list(m), max_length=max_length) for m in split["messages"]]
    return datasets.Dataset.from_list(rows)
