"""Dropout at a quarter of its cost on the CPU, with the same keep probability: the masks come from raw random words.

On this kind of CPU, `bernoulli_` (what `nn.Dropout` and scaled_dot_product_attention's dropout draw their masks
with) takes 2.2 ms for the 442k attention probabilities of one MiniLM layer (batch 16, 48 tokens), and filling int64
words with random bits then reading them as 16-bit numbers takes 0.17 ms for the same count. Attention with dropout
also cannot take SDPA's fused CPU kernel and falls back to its math path: 5.8 ms forward and backward per layer
there, 3.0 ms written out with the cheap mask. A MiniLM training step spent a third of its time in dropout.

A unit is dropped when its 16-bit draw falls below round(p * 65536), so p is kept to within 1 / 131072, and the kept
units are scaled by the inverse of the exact keep probability. The draws come from torch's default generator, which
the Trainer seeds and checkpoints, so a run repeats and a resumed one continues its stream.

Only the CPU gets this: CUDA's fused dropout kernels are already fast, and a compiled model gets inductor's own.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

LEVELS = 1 << 16  # one draw is a 16-bit number
ATTENTION = "sdpa_cheap_dropout"  # the attention implementation's name in transformers' registries
ATTENTION_DROPOUT_FIELDS = ("attention_probs_dropout_prob", "attention_dropout")  # BERT's, and most others'


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """A bool mask of `shape`, each entry False with probability p (to within 1 / 131072)."""
    count = math.prod(shape)
    # random_ over the whole int64 range: every bit of every word is a fair coin, so each int16 view is uniform.
    words = torch.empty((count + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), None)
    draws = words.view(torch.int16)[:count].view(shape)
    return draws >= round(p * LEVELS) - LEVELS // 2


def _keep_scale(p: float) -> float:
    return LEVELS / (LEVELS - round(p * LEVELS))


class _Dropout(torch.autograd.Function):
    """Dropout whose backward multiplies by the same saved mask (as torch's own does)."""

    @staticmethod
    def forward(ctx: Any, inputs: torch.Tensor, p: float) -> torch.Tensor:
        keep = keep_mask(inputs.shape, p, inputs.device)
        ctx.save_for_backward(keep)
        ctx.scale = _keep_scale(p)
        return inputs * keep * ctx.scale

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (keep,) = ctx.saved_tensors
        return grad * keep * ctx.scale, None


def cheap_dropout(inputs: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """`torch.nn.functional.dropout` with the cheap mask."""
    if not training or p == 0:
        return inputs
    if p == 1:
        return torch.zeros_like(inputs)
    return _Dropout.apply(inputs, p)


class CheapDropout(torch.nn.Dropout):
    """`nn.Dropout` drawing its mask from raw random words; the same p, and still an `nn.Dropout` to code that sets
    it (a job's dropout override, peft)."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return cheap_dropout(inputs, self.p, self.training)


def cheap_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention, except in training with dropout: there softmax(QK^T)V is written out with the
    cheap mask (SDPA would take its math path and `bernoulli_`). The scores and softmax are fp32, so bf16 rounds no
    small probability away; the two matmuls stay in the inputs' dtype."""
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", False)
    plain = (
        dropout == 0
        or not module.training
        or kwargs.get("position_bias") is not None
        or kwargs.get("softcap") is not None
        or getattr(module, "num_key_value_groups", 1) > 1
        or (causal and attention_mask is None and query.shape[2] > 1)  # SDPA's is_causal: no mask to apply here
    )
    if plain:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)).float() * scale
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:  # True: attend
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:  # additive
            scores = scores + attention_mask
    probabilities = cheap_dropout(torch.softmax(scores, dim=-1), dropout).to(value.dtype)
    return torch.matmul(probabilities, value).transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, cheap_attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)  # the same boolean masks as SDPA's


def cheapen_dropout(model: torch.nn.Module) -> int:
    """Swap the model's `nn.Dropout` modules for `CheapDropout`, and its SDPA attention for `cheap_attention` when
    the attention drops out; returns how many modules were swapped. For CPU training: see the module's docstring."""
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Dropout:
                setattr(parent, name, CheapDropout(child.p, child.inplace))
                swapped += 1
    config = getattr(model, "config", None)
    rates = [getattr(config, field, None) for field in ATTENTION_DROPOUT_FIELDS]
    drops = any(isinstance(rate, float) and rate > 0 for rate in rates)
    if drops and getattr(config, "_attn_implementation", None) == "sdpa":
        model.set_attn_implementation(ATTENTION)  # not saved: config.json and a reload keep plain SDPA
    return swapped
