"""Token-classification inference: word-level tags for tokenized sentences, entity spans for raw text."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from engine.metrics import softmax


def _word_probs(word_ids: list[int | None], probs: np.ndarray) -> dict[int, np.ndarray]:
    """Each word's label probabilities, read off its first sub-token (the one that carried the training label)."""
    first: dict[int, np.ndarray] = {}
    for position, word in enumerate(word_ids):
        if word is not None and word not in first:
            first[word] = probs[position]
    return first


def predict_word_tags(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    sentences: list[list[str]],
    *,
    labels: list[str],
    max_length: int,
    batch_size: int = 32,
) -> list[list[str]]:
    """A tag for every word of each pre-tokenized sentence; words cut off by truncation are tagged 'O'."""
    device = next(model.parameters()).device
    model.eval()
    tags: list[list[str]] = []
    with torch.inference_mode():
        for start in range(0, len(sentences), batch_size):
            batch = sentences[start : start + batch_size]
            enc = tokenizer(
                batch,
                is_split_into_words=True,
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            probs = softmax(model(**enc.to(device)).logits.float().cpu().numpy())
            for i, words in enumerate(batch):
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
) -> list[list[dict[str, Any]]]:
    """Entity spans (text, type, start, end, score) with character offsets into each raw text."""
    device = next(model.parameters()).device
    model.eval()
    results: list[list[dict[str, Any]]] = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            enc = tokenizer(
                batch,
                truncation=True,
                max_length=max_length,
                padding=True,
                return_offsets_mapping=True,
                return_tensors="pt",
            )
            offsets = enc.pop("offset_mapping").numpy()
            probs = softmax(model(**enc.to(device)).logits.float().cpu().numpy())
            for i, text in enumerate(batch):
                results.append(_spans(text, enc.word_ids(i), offsets[i], probs[i], labels))
    return results


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
