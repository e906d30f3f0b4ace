"""How much memory a job will need at its peak, from the model's shape and the job's knobs, before it starts.

An estimate, not a measurement: fp32 master weights, gradients and optimizer state of the trainable weights, the
activations a batch keeps for the backward pass (Korthikanti et al.'s ~34 bytes per token and width per layer in
16-bit; with checkpointing only each layer's input), and a causal LM's logits over its vocabulary: chat's loss keeps
one chunk of them at a time, and its frozen weights under adapters stay 16-bit in a 16-bit job.
`bench/recipes.py` prints it beside the measured peak.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from engine.catalog import CATALOG
from engine.params import TrainingParams

GB = 1024**3
OVERHEAD = 1.25  # allocator slack and the tokenized data
RUNTIME = 0.4 * GB  # Python, torch and transformers themselves (a worker's resident memory before any model)
# The share of the weights that trains with adapters (and the head): LoRA r16 on the projections, IA3's vectors.
ADAPTER_SHARE = {"lora": 0.02, "ia3": 0.005}
OPTIMIZER_BYTES = {"adamw": 8.0, "adafactor": 1.0}  # per trainable weight: AdamW's two fp32 moments; factored
# A decoder on the CPU keeps far more than the 17 values of the formula: RMSNorm's fp32 intermediates, rotary
# copies, LoRA's dropout masks and inputs, and the backward pass's temporaries. SmolLM2 with LoRA in bf16 peaked at
# about 150 bytes per token, layer and unit of width (bench/chat_train.py, batches of 8 x 222 and 8 x 424 tokens).
CHAT_VALUES_PER_WIDTH = 75


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs of a model."""

    parameters: int
    layers: int
    hidden: int
    vocab: int


@dataclass(frozen=True)
class MemoryEstimate:
    """The estimated peak in bytes, by part."""

    weights: float
    training_state: float  # gradients and optimizer moments
    activations: float
    logits: float = 0.0  # chat's loss: one chunk of positions' logits at a time, whatever the batch

    @property
    def peak(self) -> float:
        return (self.weights + self.training_state + self.activations + self.logits) * OVERHEAD + RUNTIME

    def words(self) -> str:
        """'about 1.9 GB (weights 0.1, gradients and optimizer 0.3, activations 1.1, runtime 0.4)'."""
        logits = f", logits {self.logits / GB:.1f}" if self.logits else ""
        return (
            f"about {self.peak / GB:.1f} GB (weights {self.weights / GB:.1f}, gradients and optimizer "
            f"{self.training_state / GB:.1f}, activations {self.activations / GB:.1f}{logits}, "
            f"runtime {RUNTIME / GB:.1f})"
        )


def model_shape(base_model: str) -> ModelShape | None:
    """The shape of a catalog model, or of a local folder's config.json; None when neither is at hand."""
    if base_model in CATALOG:
        entry = CATALOG[base_model]
        layers, hidden, vocab = entry.shape
        return ModelShape(entry.parameters, layers, hidden, vocab) if layers else None
    config = Path(base_model).expanduser() / "config.json"
    try:
        raw = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    raw = raw.get("text_config", raw)
    layers, hidden, vocab = (raw.get(k) for k in ("num_hidden_layers", "hidden_size", "vocab_size"))
    if not all(isinstance(v, int) for v in (layers, hidden, vocab)):
        return None
    return ModelShape(12 * layers * hidden * hidden + vocab * hidden, layers, hidden, vocab)


def estimate(shape: ModelShape, params: TrainingParams, *, causal_lm: bool, half_precision: bool) -> MemoryEstimate:
    """The peak memory of training `shape` with `params`: an upper bound for short texts, since batches are padded
    only to their own longest text, not to max_length."""
    embeddings = shape.vocab * shape.hidden
    frozen = params.freeze_embeddings or (params.freeze_embeddings is None and embeddings > 0.5 * shape.parameters)
    trainable = shape.parameters - (embeddings if frozen else 0)
    if params.freeze_layers and shape.layers:
        trainable -= (shape.parameters - embeddings) * min(params.freeze_layers, shape.layers) / shape.layers
    if params.method != "full":
        trainable = shape.parameters * ADAPTER_SHARE[params.method]
    state = trainable * (4 + OPTIMIZER_BYTES[params.optimizer])
    tokens = params.batch_size * params.max_length
    per_value = 2 if half_precision else 4
    # Values kept per token and unit of width in a layer; chat's as measured (bench/chat_train.py).
    per_width = (CHAT_VALUES_PER_WIDTH if causal_lm else 17) * per_value
    if params.gradient_checkpointing:
        # Each layer's input is kept; one layer's full activations are rebuilt at a time.
        kept = tokens * shape.hidden * per_value * shape.layers + tokens * shape.hidden * per_width
    else:
        kept = tokens * shape.hidden * per_width * shape.layers
    return MemoryEstimate(
        weights=shape.parameters * (2 if causal_lm and half_precision and params.method != "full" else 4),
        training_state=state,
        activations=kept,
        logits=_chat_logits(shape.vocab) if causal_lm else 0.0,
    )


def _chat_logits(vocab: int) -> float:
    # Chat's loss (engine.tasks.chat.loss) holds one chunk of assistant positions' logits at a time, never the
    # batch's: in fp32, with their softmax and gradient, plus the 16-bit copy the LM head returns.
    from engine.tasks.chat import loss_chunk_positions

    return loss_chunk_positions(vocab) * vocab * (4 * 3 + 2)


def available_bytes(device: str) -> float:
    """Free memory where training runs: the GPU's free memory, or the machine's available RAM."""
    if device == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info()
        return float(free)
    try:
        import psutil

        return float(psutil.virtual_memory().available)
    except ImportError:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def fit_warning(memory: MemoryEstimate, free: float) -> str:
    """What to change when the estimate does not fit in `free` bytes; empty when it fits."""
    if memory.peak <= free:
        return ""
    return (
        f"this job needs {memory.words()} but only {free / GB:.1f} GB is free: lower the batch size (and raise "
        "gradient accumulation to keep the effective batch), shorten max length, turn on gradient checkpointing, "
        "or train with LoRA"
    )
