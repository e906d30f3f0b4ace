"""Token-classification inference: word-level tags for tokenized sentences, entity spans for raw text."""

from __future__ import annotations

from typing import Any

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from engine.metrics import softmax


def _word_probs(word_ids: list[int | None], probs: np.ndarray) -> dict[int, np.ndarray]:
    """Each word's label probabilities, read off its first sub-token (the one that carried the training label)."""
    first: dict[int, np.ndarray] = {}
    for position, word in enumerate(word_ids):
        if word is not None and word not in first:
            first[word] = probs[position]
    return first


def _token_probs(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, encoding: Any, *, batch_size: int, max_tokens: int
) -> list[np.ndarray]:
    """Per-token label probabilities of each encoded text (its own length, no padding), in the encoding's order."""
    # engine.predict imports this module, so its batching helpers are imported when first used.
    from engine.predict import batched_logits

    lengths = [len(ids) for ids in encoding["input_ids"]]
    probs: list[np.ndarray] = [np.zeros((0, 0), dtype=np.float32)] * len(lengths)
    for idx, logits in batched_logits(model, tokenizer, encoding, batch_size=batch_size, max_tokens=max_tokens):
        batch_probs = softmax(logits)
        for r, i in enumerate(idx):
            probs[i] = batch_probs[r, : lengths[i]]  # right-padded: a text's tokens come first
    return probs


def predict_word_tags(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    sentences: list[list[str]],
    *,
    labels: list[str],
    max_length: int,
    batch_size: int = 32,
    max_tokens: int = 8192,
) -> list[list[str]]:
    """A tag for every word of each pre-tokenized sentence; words cut off by truncation are tagged 'O'."""
    if not sentences:
        return []
    enc = tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=max_length)
    probs = _token_probs(model, tokenizer, enc, batch_size=batch_size, max_tokens=max_tokens)
    tags: list[list[str]] = []
    for i, words in enumerate(sentences):
        by_word = _word_probs(enc.word_ids(i), probs[i])
        tags.append([labels[int(by_word[w].argmax())] if w in by_word else "O" for w in range(len(words))])
    return tags


def tag_spans(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    *,
    labels: list[str],
    max_length: int,
    batch_size: int = 16,
    max_tokens: int = 8192,
) -> list[list[dict[str, Any]]]:
    """Entity spans (text, type, start, end, score) with character offsets into each raw text."""
    if not texts:
        return []
    enc = tokenizer(texts, truncation=True, max_length=max_length, return_offsets_mapping=True)
    probs = _token_probs(model, tokenizer, enc, batch_size=batch_size, max_tokens=max_tokens)
    return [
        _spans(text, enc.word_ids(i), np.asarray(enc["offset_mapping"][i]).reshape(-1, 2), probs[i], labels)
        for i, text in enumerate(texts)
    ]


def _spans(
    text: str, word_ids: list[int | None], offsets: np.ndarray, probs: np.ndarray, labels: list[str]
) -> list[dict[str, Any]]:
    # Character extent of each word: from its first sub-token's start to its last sub-token's end.
    extent: dict[int, list[int]] = {}
    for position, word in enumerate(word_ids):
        if word is None:
            continue
        begin, end = int(offsets[position][0]), int(offsets[position][1])
        if word in extent:
            extent[word][1] = max(extent[word][1], end)
        else:
            extent[word] = [begin, end]
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for word, p in sorted(_word_probs(word_ids, probs).items()):
        tag = labels[int(p.argmax())]
        prefix, _, kind = tag.partition("-")
        # An I- that does not continue an entity of its type starts one, as seqeval's lenient reading does.
        if prefix == "I" and current is not None and current["type"] == kind:
            current["end"] = extent[word][1]
            current["scores"].append(float(p.max()))
            continue
        if current is not None:
            spans.append(current)
            current = None
        if prefix in ("B", "I") and kind:
            current = {"type": kind, "start": extent[word][0], "end": extent[word][1], "scores": [float(p.max())]}
    if current is not None:
        spans.append(current)
    return [
        {
            "text": text[s["start"] : s["end"]],
            "type": s["type"],
            "start": s["start"],
            "end": s["end"],
            "score": round(float(np.mean(s["scores"])), 6),
        }
        for s in spans
    ]
