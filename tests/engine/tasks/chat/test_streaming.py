"""A streamed reply: its pieces make the whole greedy reply, trimmed, cut before a stop string that may arrive split
over pieces; it says why it ended and how many tokens it took; closing it stops the generation."""

from __future__ import annotations

import time

import pytest
import torch

from engine.catalog import resolve_model
from engine.tasks.chat.generation import StopText, generate_reply, stream_reply

PROMPT = [{"role": "user", "content": "How do I export my notes?"}]


def shown(pieces: list[str], stop: list[str]) -> tuple[list[str], bool]:
    text = StopText(stop)
    out = [text.feed(piece) for piece in pieces]
    out.append(text.finish())
    return out, text.stopped


def test_a_stop_string_split_over_pieces_is_held_back_and_cut():
    out, stopped = shown(["Hello", " wor", "ld. Us", "er: more"], ["User:"])
    assert "".join(out) == "Hello world." and stopped
    assert out[:3] == ["Hello", " wor", "ld."]  # " Us" waits: it may be the start of "User:"
    out, stopped = shown(["Hello", " Us", "ual text"], ["User:"])
    assert "".join(out) == "Hello Usual text" and not stopped  # held back, then shown once it is not the stop


def test_whitespace_around_the_reply_is_trimmed_without_taking_back_what_was_shown():
    out, _ = shown(["\n ", " Hi", " there ", "\n", "friend", "  \n"], [])
    assert "".join(out) == "Hi there \nfriend" and out[:3] == ["", "Hi", " there"]
    out, stopped = shown(["a  ", "b"], ["b"])
    assert "".join(out) == "a" and stopped  # the spaces before a stop string go too
    assert shown(["  ", "\n"], [])[0] == ["", "", ""]
    assert "".join(shown(["x.y"], ["", "."])[0]) == "x"  # an empty stop string is ignored


@pytest.fixture(scope="module")
def smollm():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model("smollm2-135m-instruct")
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), AutoTokenizer.from_pretrained(path)


@pytest.mark.slow
def test_the_pieces_make_the_greedy_reply_and_the_stream_counts_its_tokens(smollm):
    model, tokenizer = smollm
    stream = stream_reply(model, tokenizer, PROMPT, max_new_tokens=12, temperature=0.0)
    pieces = list(stream)
    whole = generate_reply(model, tokenizer, PROMPT, max_new_tokens=12)
    assert len(pieces) > 2 and "".join(pieces) == whole.text
    assert stream.new_tokens == whole.new_tokens == 12 and stream.finish_reason == "length"
    prompt = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert stream.prompt_tokens == len(prompt) > 5
    assert stream.context_length == model.config.max_position_embeddings


@pytest.mark.slow
def test_a_stop_string_ends_the_reply_and_the_generation(smollm):
    model, tokenizer = smollm
    reply = generate_reply(model, tokenizer, PROMPT, max_new_tokens=24).text
    stop = reply.split()[3]
    stream = stream_reply(model, tokenizer, PROMPT, max_new_tokens=24, temperature=0.0, stop=[stop])
    assert "".join(stream) == reply[: reply.index(stop)].rstrip() and stream.finish_reason == "stop"
    assert stream.new_tokens < 24  # generation stopped at the stop string, not at the token limit


@pytest.mark.slow
def test_a_seed_repeats_a_sampled_reply_and_closing_stops_generating(smollm):
    model, tokenizer = smollm
    replies = ["".join(stream_reply(model, tokenizer, PROMPT, max_new_tokens=12, seed=5)) for _ in range(2)]
    assert replies[0] == replies[1]
    stream = stream_reply(model, tokenizer, PROMPT, max_new_tokens=500, temperature=0.0)
    next(stream)
    stream.close()
    deadline = time.monotonic() + 30
    while stream._thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not stream._thread.is_alive() and stream.new_tokens < 100
    assert list(stream) == []
