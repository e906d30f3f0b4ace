"""Replies never loop: a run of NO_REPEAT_NGRAM tokens the reply already holds cannot come again, while the prompt's
own runs (a sign-off earlier turns used) stay allowed; distinct-2 tells a looping answer from a varied one."""

from __future__ import annotations

import torch

from engine.catalog import resolve_model
from engine.tasks.chat import NO_REPEAT_NGRAM
from engine.tasks.chat.generation import NoRepeatInReply, distinct_2


def _banned(ids: list[int], prompt_length: int, vocab: int = 10) -> set[int]:
    scores = torch.zeros(1, vocab)
    out = NoRepeatInReply(prompt_length, size=3)(torch.tensor([ids]), scores)
    return {i for i in range(vocab) if out[0, i] == -float("inf")}


def test_a_reply_cannot_repeat_its_own_run_of_tokens_but_may_repeat_the_prompts():
    # Reply 1 2 3 4 1 2: a 3 next would repeat "1 2 3".
    assert _banned([9, 9, 1, 2, 3, 4, 1, 2], prompt_length=2) == {3}
    # The prompt held "5 6 7"; the reply "5 6" may go on with 7, as a sign-off an earlier turn used.
    assert _banned([5, 6, 7, 0, 5, 6], prompt_length=4) == set()
    assert _banned([1, 2], prompt_length=0) == set()  # too short to repeat anything
    assert NO_REPEAT_NGRAM >= 3


def test_distinct_2_is_low_for_a_looping_answer_and_high_for_a_varied_one():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("minilm-l6", task="text-classification"))
    looping = "I'm not sure I'm sure I'm not sure I'm sure I'm not sure I'm sure I'm not sure"
    varied = "Open Settings, choose Sync, and sign in again; your notes come back within a minute."
    assert distinct_2(tokenizer, [looping]) < 0.5 < distinct_2(tokenizer, [varied]) == 1.0
    assert distinct_2(tokenizer, ["", "a"]) is None  # no pairs at all
