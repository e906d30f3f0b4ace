"""The chat training loss without the vocabulary-wide logits of every position.

A causal LM's own loss projects every position onto the whole vocabulary (SmolLM2: 49k, Gemma 3: 262k entries) in
fp32, and keeps those logits for the backward pass: the largest tensor of the step by far, most of it for prompt and
padding positions whose labels are -100. Here the decoder body gives the hidden states, only the positions that
predict an assistant token go through the LM head, and they go in chunks, each under activation checkpointing, so
one chunk's logits exist at a time. The sum of the chunks' cross-entropy over the token count is the same loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from engine.tasks.chat import loss_chunk_positions
from engine.tasks.chat.tokens import IGNORE_INDEX


@dataclass(frozen=True)
class DecoderParts:
    """What the chunked loss needs of a causal LM: its decoder body, its LM head and its final-logit softcap."""

    body: torch.nn.Module
    head: torch.nn.Module
    softcap: float | None


def decoder_parts(model: torch.nn.Module) -> DecoderParts:
    """The decoder body and LM head of a causal LM, looking through a peft wrapper (its adapters live in the body)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    body, head = getattr(inner, "model", None), getattr(inner, "lm_head", None)
    if body is None or head is None:
        raise TypeError(
            f"{type(inner).__name__} has no decoder body (.model) and LM head (.lm_head); the chat loss needs a "
            "Llama-, Gemma- or Qwen-style causal LM"
        )
    config = inner.config.get_text_config() if hasattr(inner.config, "get_text_config") else inner.config
    return DecoderParts(body, head, getattr(config, "final_logit_softcapping", None))


def _chunk_loss(
    head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor, softcap: float | None, smoothing: float
) -> torch.Tensor:
    logits = head(hidden).float()
    if softcap:  # Gemma's final-logit softcapping, as its own forward applies it
        logits = torch.tanh(logits / softcap) * softcap
    return F.cross_entropy(logits, targets, reduction="sum", label_smoothing=smoothing)


def token_loss_sum(
    model: torch.nn.Module,
    inputs: dict[str, Any],
    *,
    chunk: int | None = None,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, int]:
    """The summed cross-entropy of the label tokens (labels != -100 after the causal shift) and their count."""
    parts = decoder_parts(model)
    labels = inputs["labels"]
    hidden = parts.body(
        input_ids=inputs["input_ids"],
        attention_mask=inputs.get("attention_mask"),
        position_ids=inputs.get("position_ids"),
        use_cache=False,
    ).last_hidden_state
    chunk = chunk or loss_chunk_positions(parts.head.weight.shape[0])
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    picked, wanted = hidden[:, :-1][keep], targets[keep]  # (tokens, width): prompt and padding never reach the head
    total = hidden[:, :0].sum().float()  # zero, yet on the graph: a batch with no label token still backpropagates
    remember = torch.is_grad_enabled()  # evaluation keeps nothing for a backward pass, so it needs no checkpoint
    for start in range(0, picked.shape[0], chunk):
        args = (parts.head, picked[start : start + chunk], wanted[start : start + chunk], parts.softcap)
        if remember:
            total = total + checkpoint(_chunk_loss, *args, label_smoothing, use_reentrant=False)
        else:
            total = total + _chunk_loss(*args, label_smoothing)
    return total, int(wanted.shape[0])


def chunked_loss(
    model: torch.nn.Module,
    inputs: dict[str, Any],
    num_items_in_batch: torch.Tensor | int | None = None,
    *,
    chunk: int | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Mean cross-entropy per label token; over `num_items_in_batch` tokens when the Trainer gives it (all the
    batches one optimizer step accumulates), so accumulated steps weigh each token alike."""
    total, count = token_loss_sum(model, inputs, chunk=chunk, label_smoothing=label_smoothing)
    if num_items_in_batch is None:
        return total / max(count, 1)
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch
