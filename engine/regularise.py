"""Regularisation a job asks for, applied to the built model and its loss: dropout, frozen embeddings and layers,
class weights and label smoothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.nn import functional

from engine.params import TrainingParams

# Config fields that hold a model's hidden or attention dropout, across the architectures of the catalog and hub.
DROPOUT_CONFIG_FIELDS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "attention_dropout",
    "hidden_dropout",
    "dropout",
    "classifier_dropout",
)
IGNORED = -100  # the label of padding and of sub-word pieces past the first


def regularise(model: torch.nn.Module, params: TrainingParams) -> int:
    """Apply the job's dropout and freezing to a freshly built model; returns how many embedding weights froze."""
    if params.dropout is not None:
        set_dropout(model, params.dropout)
    frozen = freeze_embeddings(model, params.freeze_embeddings)
    if params.freeze_layers:
        freeze_lowest_layers(model, params.freeze_layers)
    return frozen


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Every hidden and attention dropout of the model at `p`; a LoRA adapter's own dropout stays as set."""
    config = getattr(model, "config", None)
    for name in DROPOUT_CONFIG_FIELDS:
        if isinstance(getattr(config, name, None), float):
            setattr(config, name, p)
    for name, module in model.named_modules():
        if "lora_dropout" in name:
            continue
        if isinstance(module, torch.nn.Dropout):
            module.p = p
        # Attention written with scaled_dot_product_attention keeps its dropout as a float, not a module.
        for attribute in ("attention_dropout", "dropout_prob"):
            if isinstance(getattr(module, attribute, None), float):
                setattr(module, attribute, p)


def freeze_embeddings(model: torch.nn.Module, requested: bool | None) -> int:
    """Stop the input embeddings from training when asked, or (unset) when they are most of the weights.

    Returns how many weights were frozen. Tied output embeddings (a causal LM's head) freeze with them.
    """
    embeddings = model.get_input_embeddings()
    if embeddings is None:
        return 0
    size = embeddings.weight.numel()
    total = sum(p.numel() for p in model.parameters())
    if requested is False or (requested is None and size < 0.5 * total):
        return 0
    embeddings.weight.requires_grad_(False)
    return size


def transformer_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The model's stack of transformer layers, lowest first (BERT's encoder.layer, Llama's and Gemma's layers)."""
    count = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count:
            return module
    raise ValueError(f"cannot find the transformer layers of this {type(model).__name__}; set freeze_layers to 0")


def freeze_lowest_layers(model: torch.nn.Module, count: int) -> None:
    """Keep the lowest `count` transformer layers (and any adapters in them) as they are."""
    layers = transformer_layers(model)
    if count >= len(layers):
        raise ValueError(
            f"freeze_layers {count} would freeze every layer: the model has {len(layers)}; "
            f"use at most {len(layers) - 1}"
        )
    for layer in layers[:count]:
        layer.requires_grad_(False)


def class_weights(params: TrainingParams, labels: list[str], train_labels: Iterable[Any]) -> torch.Tensor | None:
    """The loss weight of each label id: 'balanced' (n / (classes x count), scikit-learn's rule), the user's own
    per label (1 for labels left out), or None when every example counts the same."""
    if params.class_weights is None:
        return None
    if params.class_weights == "balanced":
        counts = Counter(_flat_ids(train_labels))
        total = sum(counts.values())
        # A label the training split lacks gets weight 1: no example of it to weigh.
        return torch.tensor(
            [total / (len(labels) * counts[i]) if counts[i] else 1.0 for i in range(len(labels))], dtype=torch.float32
        )
    unknown = sorted(set(params.class_weights) - set(labels))
    if unknown:
        raise ValueError(f"class_weights names {unknown}, which are not labels of this data; labels are {labels}")
    return torch.tensor([params.class_weights.get(label, 1.0) for label in labels], dtype=torch.float32)


def _flat_ids(train_labels: Iterable[Any]) -> Iterable[int]:
    for value in train_labels:
        if isinstance(value, list | tuple):
            yield from (v for v in value if v != IGNORED)
        else:
            yield int(value)


def weighted_loss(weights: torch.Tensor | None, smoothing: float) -> Callable[..., torch.Tensor]:
    """A Trainer `compute_loss_func`: cross-entropy with per-label weights (or none) and label smoothing, padding
    ignored, for the classification heads.

    Summed and divided by the label count of all the accumulated batches, as the Trainer expects: the models' own
    classification losses are batch means, which the Trainer (transformers 5) does not divide by the accumulation
    steps, so 4 accumulated batches of 4 would step with 4 times the gradient of one batch of 16.
    """

    def loss(outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"]
        flat = logits.reshape(-1, logits.shape[-1]).float()
        target = labels.reshape(-1).to(flat.device)
        total = functional.cross_entropy(
            flat,
            target,
            weight=weights.to(flat.device) if weights is not None else None,
            ignore_index=IGNORED,
            label_smoothing=smoothing,
            reduction="sum",
        )
        count = num_items_in_batch if num_items_in_batch is not None else (target != IGNORED).sum().clamp(min=1)
        return total / count

    return loss
