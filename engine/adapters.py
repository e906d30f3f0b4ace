"""Parameter-efficient fine-tuning shared by every task: LoRA adapters on the attention and MLP projections (the
task's head, when it has one, trained fully), and a saved folder with the merged model and the adapter alone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from engine.files import atomic_dir

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from engine.params import TrainingParams

_DECODER = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Attention and MLP projections: adapters there train best per parameter (the LoRA and QLoRA papers' finding).
DEFAULT_TARGETS = {
    "llama": _DECODER,
    "mistral": _DECODER,
    "qwen2": _DECODER,
    "qwen3": _DECODER,
    "gemma": _DECODER,
    "gemma3": _DECODER,
    "gemma3_text": _DECODER,
    "phi3": ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    # BERT-style encoders: attention projections and the dense layers of attention output, MLP and pooler.
    "bert": ("query", "key", "value", "dense"),
    "roberta": ("query", "key", "value", "dense"),
    "xlm-roberta": ("query", "key", "value", "dense"),
    "distilbert": ("q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"),
}
ADAPTER = "adapter"
PeftTask = Literal["CAUSAL_LM", "SEQ_CLS", "TOKEN_CLS"]


def lora_targets(model_type: str, requested: tuple[str, ...] | None) -> list[str] | str:
    """The layers that get adapters: the user's list, the architecture's default, or every linear layer."""
    if requested:
        return list(requested)
    return list(DEFAULT_TARGETS.get(model_type, ())) or "all-linear"


def add_adapters(model: PreTrainedModel, params: TrainingParams, task_type: PeftTask) -> PreTrainedModel:
    """The model as it is for method 'full'; for 'lora' (or 'ia3'), wrapped in LoRA adapters (IA3 rescaling vectors)
    with only they (and, for the classification tasks, the fresh head: peft keeps `classifier`/`score` fully
    trainable) left to train."""
    if params.method == "full":
        return model
    from peft import IA3Config, LoraConfig, get_peft_model

    if params.method == "ia3":
        # peft knows the keys, values and MLP output of common architectures; a user's list replaces them, and
        # its MLP layers (peft's feed-forward modules) are those named like the defaults' last projection.
        targets = list(params.lora_target_modules) if params.lora_target_modules else None
        feedforward = [t for t in targets if t in ("down_proj", "dense", "fc2", "lin2")] if targets else None
        ia3 = IA3Config(task_type=task_type, target_modules=targets, feedforward_modules=feedforward)
        return get_peft_model(model, ia3)
    config = LoraConfig(
        task_type=task_type,
        r=params.lora_rank,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=lora_targets(model.config.model_type, params.lora_target_modules),
    )
    return get_peft_model(model, config)


def merged(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, output_dir: Path) -> PreTrainedModel:
    """A LoRA model's adapter saved alone in output_dir/adapter (a few MB, for peft users), and the model with the
    adapter merged in, which any transformers user loads; a fully fine-tuned model as it is."""
    if not hasattr(model, "merge_and_unload"):
        return model
    with atomic_dir(output_dir / ADAPTER) as partial:
        model.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
    return model.merge_and_unload()
