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
    RepetitionPenaltyLogitsProcessor,
    TextIteratorStreamer,
)

from engine.tasks.chat import NO_REPEAT_NGRAM, REPETITION_PENALTY
from engine.tasks.chat.loss import token_loss_sum
from engine.tasks.chat.tokens import render_template


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
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    tokenizer: PreTrainedTokenizerBase,
    prompt_length: int,
    repetition_penalty: float = REPETITION_PENALTY,
) -> dict:
    # temperature 0 means greedy: reproducible answers for reports and tests.
    processors = [NoRepeatInReply(prompt_length)]
    if repetition_penalty != 1.0:
        # Over the reply only, like NoRepeatInReply: the prompt's words (and a batch's left padding) stay unpenalised.
        processors.append(RepetitionPenaltyLogitsProcessor(repetition_penalty, prompt_ignore_length=prompt_length))
    args: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "pad_token_id": tokenizer.pad_token_id,
        "logits_processor": LogitsProcessorList(processors),
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
    repetition_penalty: float = REPETITION_PENALTY,
) -> Reply:
    """The assistant's next turn for `messages`, generated with the model's chat template."""
    device = next(model.parameters()).device
    inputs = _prompt(tokenizer, messages, device)
    model.eval()
    started = time.perf_counter()
    with torch.inference_mode():
        length = inputs["input_ids"].shape[1]
        sampling = _sampling(temperature, top_p, max_new_tokens, tokenizer, length, repetition_penalty)
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
    repetition_penalty: float = REPETITION_PENALTY,
) -> Iterator[str]:
    """Yield the reply as it grows, piece by piece (generation runs in a background thread)."""
    device = next(model.parameters()).device
    inputs = _prompt(tokenizer, messages, device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    model.eval()

    def run() -> None:
        with torch.inference_mode():
            length = inputs["input_ids"].shape[1]
            sampling = _sampling(temperature, top_p, max_new_tokens, tokenizer, length, repetition_penalty)
            model.generate(**inputs, streamer=streamer, **sampling)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield from streamer
    thread.join()


def generate_replies(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    conversations: list[list[dict]],
    *,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    repetition_penalty: float = REPETITION_PENALTY,
    seed: int | None = None,
) -> list[Reply]:
    """The next assistant turn of each conversation, in one batched, left-padded generate. With a `seed`, sampled
    replies repeat from run to run. Each reply's seconds are its share of the batch's time, so their sum is the wall
    time and tokens over seconds the batch's throughput."""
    if not conversations:
        return []
    device = next(model.parameters()).device
    texts = [render_template(tokenizer, messages, generation_prompt=True) for messages in conversations]
    inputs = tokenizer(texts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt")
    inputs = {k: v.to(device) for k, v in inputs.items()}
    length = inputs["input_ids"].shape[1]  # every row's reply starts here: the prompts are padded on the left
    model.eval()
    started = time.perf_counter()
    with torch.inference_mode():
        if seed is not None:
            torch.manual_seed(seed)
        sampling = _sampling(temperature, top_p, max_new_tokens, tokenizer, length, repetition_penalty)
        output = model.generate(**inputs, **sampling)
    share = (time.perf_counter() - started) / len(conversations)
    return [
        Reply(tokenizer.decode(new, skip_special_tokens=True).strip(), _reply_length(new, tokenizer), share)
        for new in output[:, length:]
    ]


def _reply_length(new: torch.Tensor, tokenizer: PreTrainedTokenizerBase) -> int:
    # A row that ended early is filled with padding after its end of turn, which counts once.
    stops = (new == tokenizer.eos_token_id).nonzero() if tokenizer.eos_token_id is not None else new[:0]
    return int(stops[0, 0]) + 1 if len(stops) else int(new.shape[0])


def mean_token_loss(model: PreTrainedModel, collator: Any, rows: list[dict], *, batch_size: int = 8) -> float:
    """Cross-entropy per label token (labels != -100) over `rows`, weighted by token count, not by batch; through
    the training's chunked loss (engine.tasks.chat.loss), so no batch's vocabulary-wide logits are ever held."""
    device = next(model.parameters()).device
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            batch = {k: v.to(device) for k, v in collator(rows[start : start + batch_size]).items()}
            loss, tokens = token_loss_sum(model, batch)
            total += float(loss)
            count += tokens
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
