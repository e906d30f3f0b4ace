"""Causal-LM inference: replies to chat messages (whole or streamed) and held-out loss / perplexity."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TextIteratorStreamer,
)

from engine.tasks.chat import NO_REPEAT_NGRAM


@dataclass(frozen=True)
class Reply:
    """A generated answer and how fast it came."""

    text: str
    new_tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def _prompt(tokenizer: PreTrainedTokenizerBase, messages: list[dict], device: torch.device) -> dict[str, Any]:
    encoded = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    return {k: v.to(device) for k, v in encoded.items()}


class NoRepeatInReply(LogitsProcessor):
    """Bans each next token that would repeat an n-gram the reply itself already holds. The prompt is left out, so
    a sign-off or a name that earlier turns used can be said again."""

    def __init__(self, prompt_length: int, size: int = NO_REPEAT_NGRAM) -> None:
        self.prompt_length = prompt_length
        self.size = size

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        reply = input_ids[:, self.prompt_length :].tolist()
        for row, tokens in enumerate(reply):
            if len(tokens) < self.size:
                continue
            tail = tuple(tokens[len(tokens) - self.size + 1 :])
            banned = {
                tokens[i + self.size - 1]
                for i in range(len(tokens) - self.size + 1)
                if tuple(tokens[i : i + self.size - 1]) == tail
            }
            if banned:
                scores[row, list(banned)] = -float("inf")
        return scores


def _sampling(
    temperature: float, top_p: float, max_new_tokens: int, tokenizer: PreTrainedTokenizerBase, prompt_length: int
) -> dict:
    # temperature 0 means greedy: reproducible answers for reports and tests.
    args: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "pad_token_id": tokenizer.pad_token_id,
        "logits_processor": LogitsProcessorList([NoRepeatInReply(prompt_length)]),
    }
    if tokenizer.eos_token_id is not None:
        # The template's end of turn (a base model's added template sets it) ends a reply like the model's own eos.
        args["eos_token_id"] = tokenizer.eos_token_id
    if temperature > 0:
        args.update(do_sample=True, temperature=temperature, top_p=top_p)
    else:
        args.update(do_sample=False)
    return args


def generate_reply(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    messages: list[dict],
    *,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
) -> Reply:
    """The assistant's next turn for `messages`, generated with the model's chat template."""
    device = next(model.parameters()).device
    inputs = _prompt(tokenizer, messages, device)
    model.eval()
    started = time.perf_counter()
    with torch.inference_mode():
        sampling = _sampling(temperature, top_p, max_new_tokens, tokenizer, inputs["input_ids"].shape[1])
        output = model.generate(**inputs, **sampling)
    seconds = time.perf_counter() - started
    new = output[0, inputs["input_ids"].shape[1] :]
    return Reply(tokenizer.decode(new, skip_special_tokens=True).strip(), int(new.shape[0]), seconds)


def stream_reply(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    messages: list[dict],
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.7,
    top_p: float = 0.9,
) -> Iterator[str]:
    """Yield the reply as it grows, piece by piece (generation runs in a background thread)."""
    device = next(model.parameters()).device
    inputs = _prompt(tokenizer, messages, device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    model.eval()

    def run() -> None:
        with torch.inference_mode():
            sampling = _sampling(temperature, top_p, max_new_tokens, tokenizer, inputs["input_ids"].shape[1])
            model.generate(**inputs, streamer=streamer, **sampling)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield from streamer
    thread.join()


def mean_token_loss(model: PreTrainedModel, collator: Any, rows: list[dict], *, batch_size: int = 8) -> float:
    """Cross-entropy per label token (labels != -100) over `rows`, weighted by token count, not by batch."""
    device = next(model.parameters()).device
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            batch = {k: v.to(device) for k, v in collator(rows[start : start + batch_size]).items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
            shifted = batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]), shifted.reshape(-1), ignore_index=-100, reduction="sum"
            )
            total += float(loss)
            count += int((shifted != -100).sum())
    return total / count if count else float("nan")


def perplexity(loss: float) -> float:
    """exp(loss), kept finite for display."""
    return math.exp(min(loss, 50.0))


def distinct_2(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> float | None:
    """Distinct token bigrams over all bigrams of each text, pooled (1.0: no pair repeats; a loop drives it down)."""
    pairs = []
    for text in texts:
        ids = tokenizer.encode(text or "", add_special_tokens=False)
        pairs += list(zip(ids, ids[1:], strict=False))
    return round(len(set(pairs)) / len(pairs), 4) if pairs else None
