"""Causal-LM inference: replies to chat messages (whole or streamed) and held-out loss / perplexity."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RepetitionPenaltyLogitsProcessor,
    StoppingCriteria,
    StoppingCriteriaList,
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


class StopText:
    """The part of a growing reply that can be shown: surrounding whitespace trimmed, cut before the first stop
    string. A tail that could still grow into a stop string, or turn out to be trailing whitespace, is held back, so
    what was shown is always the start of the final text."""

    def __init__(self, stop: Sequence[str] = ()) -> None:
        self.stop = [s for s in stop if s]
        self.raw = ""
        self.shown = 0
        self.stopped = False

    def feed(self, piece: str) -> str:
        """The text newly showable after `piece`; `stopped` turns true once a stop string has appeared."""
        self.raw += piece
        text = self.raw.lstrip()
        found = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        if found:
            self.stopped = True
            return self._show(text[: min(found)])
        safe = len(text)
        for s in self.stop:
            held = next((k for k in range(min(len(s) - 1, len(text)), 0, -1) if text.endswith(s[:k])), 0)
            safe = min(safe, len(text) - held)
        return self._show(text[:safe])

    def finish(self) -> str:
        """What is left to show once generation has ended."""
        return "" if self.stopped else self._show(self.raw.lstrip())

    def _show(self, upto: str) -> str:
        upto = upto.rstrip()  # ends on a visible character, so a later cut or the final strip never takes it back
        new = upto[self.shown :]
        self.shown = max(self.shown, len(upto))
        return new


class _CountingStreamer(TextIteratorStreamer):
    """A TextIteratorStreamer that also counts the reply's tokens and keeps the last one (end of turn or not)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.new_tokens = 0
        self.last_token: int | None = None

    def put(self, value: torch.Tensor) -> None:
        if not self.next_tokens_are_prompt:  # generate() hands the prompt over first; skip_prompt drops it
            ids = value.reshape(-1).tolist()
            self.new_tokens += len(ids)
            self.last_token = ids[-1] if ids else self.last_token
        super().put(value)


class _Halt(StoppingCriteria):
    """Ends generation at the next token once `event` is set: a stop string was seen, or the reader went away."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class ReplyStream:
    """The assistant's reply to `messages`, piece by piece as it is generated, with the same sampling (repetition
    penalty, no repeated n-grams) as every other reply. Surrounding whitespace is trimmed and the text ends before
    the first of the `stop` strings. Once read to the end, `finish_reason` is "stop" (end of turn or a stop string)
    or "length" (max_new_tokens ran out), and `prompt_tokens` / `new_tokens` count tokens. `close()` stops the
    generation at its next token, for a reader that stops early."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        messages: list[dict],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.7,
        top_p: float = 0.9,
        repetition_penalty: float = REPETITION_PENALTY,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> None:
        self._model = model
        self._inputs = _prompt(tokenizer, messages, next(model.parameters()).device)
        self.prompt_tokens = int(self._inputs["input_ids"].shape[1])
        # Prompt and reply together must fit in the positions the model has (None: the config does not say).
        self.context_length: int | None = getattr(model.config, "max_position_embeddings", None)
        self.max_new_tokens = max_new_tokens
        self._sampling = _sampling(
            temperature, top_p, max_new_tokens, tokenizer, self.prompt_tokens, repetition_penalty
        )
        self._halt = threading.Event()
        self._sampling["stopping_criteria"] = StoppingCriteriaList([_Halt(self._halt)])
        self._eos = tokenizer.eos_token_id
        self._streamer = _CountingStreamer(tokenizer)
        self._text = StopText(stop)
        self._seed = seed
        self._thread: threading.Thread | None = None
        self._error: Exception | None = None
        self._done = False

    @property
    def new_tokens(self) -> int:
        """Tokens generated so far (the end-of-turn token included)."""
        return self._streamer.new_tokens

    @property
    def finish_reason(self) -> str:
        """Why the reply ended: "length" when max_new_tokens cut it short, else "stop"."""
        ran_out = self.new_tokens >= self.max_new_tokens and self._streamer.last_token != self._eos
        return "length" if ran_out and not self._text.stopped else "stop"

    def __iter__(self) -> ReplyStream:
        return self

    def __next__(self) -> str:
        if self._thread is None:
            self._thread = threading.Thread(target=self._generate, daemon=True)
            self._thread.start()
        while not self._done:
            try:
                piece = next(self._streamer)
            except StopIteration:
                self._finish()
                tail = self._text.finish()
                if tail:
                    return tail
                break
            shown = self._text.feed(piece)
            if self._text.stopped:
                self._finish()
            if shown:
                return shown
        raise StopIteration

    def close(self) -> None:
        """Stop generating at the next token; what was not read yet is dropped."""
        self._halt.set()
        self._done = True

    def _finish(self) -> None:
        self._halt.set()
        self._done = True
        if self._thread is not None:
            self._thread.join()  # the counts are final once generate() has returned
        if self._error is not None:
            raise self._error

    def _generate(self) -> None:
        try:
            with torch.inference_mode():
                if self._seed is not None:
                    torch.manual_seed(self._seed)  # process-wide, as in generate_replies: a seed repeats a reply
                self._model.eval()
                self._model.generate(**self._inputs, streamer=self._streamer, **self._sampling)
        except Exception as exc:  # handed to the reader, which would otherwise wait for more text forever
            self._error = exc
            self._streamer.end()


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


# The reply as it grows, piece by piece (generation runs in a background thread); the function-style name callers use.
stream_reply = ReplyStream
