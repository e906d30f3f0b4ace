"""Domain-adaptive pre-training: continue the encoder's masked-LM training on the user's own texts, then fine-tune
from the result. The masked-LM loss on held-out domain texts, with the same masks before and after, says what the
stage changed."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling, Trainer, TrainingArguments

from engine.arguments import TENSORBOARD, tensorboard_callbacks
from engine.errors import DataError
from engine.hardware import device_name
from engine.params import TrainingParams
from engine.techniques import DomainPretrainingSpec

DOMAIN_MODEL = "domain-model"
MIN_TEXTS = 20
MAX_HELD_OUT = 500
HEAD_RATE = 1e-3  # the fresh masked-LM head's own warm-up, with the encoder frozen
HEAD_KEYS = ("cls.", "lm_head", "predictions.", "vocab_")  # parts of masked-LM head weight names across architectures


def continue_pretraining(
    model_path: str,
    tokenizer: Any,
    texts: list[str],
    spec: DomainPretrainingSpec,
    params: TrainingParams,
    work_dir: Path,
    *,
    precision: str,
    callbacks: list,
) -> tuple[str, dict[str, Any]]:
    """Masked-LM training of `model_path` on `texts`; returns the adapted model's folder and the stage's numbers."""
    if len(texts) < MIN_TEXTS:
        raise DataError(
            f"domain pre-training needs at least {MIN_TEXTS} texts; it has {len(texts)}. Add an unlabeled file "
            "(data.unlabeled) or turn techniques.domain_pretraining.use_training_texts on"
        )
    if tokenizer.mask_token is None:
        raise DataError(f"{model_path} has no mask token, so it cannot be pre-trained as a masked language model")
    rng = random.Random(params.seed)
    shuffled = rng.sample(texts, len(texts))
    n_held = min(MAX_HELD_OUT, max(1, len(texts) // 10))
    held_out, train_texts = shuffled[:n_held], shuffled[n_held:]
    model, info = AutoModelForMaskedLM.from_pretrained(model_path, output_loading_info=True)
    fresh_head = any(part in key for key in info["missing_keys"] for part in HEAD_KEYS)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=spec.mlm_probability)
    encoded = _encode(tokenizer, train_texts, params.max_length)
    eval_batches = _fixed_masks(tokenizer, held_out, params.max_length, collator, params.seed)
    device = device_name()
    before = masked_lm_loss(model.to(device), eval_batches)
    started = time.monotonic()
    head_only = None
    logged = work_dir / TENSORBOARD / "domain-pretraining"  # a folder per stage: each one restarts at step 0
    if fresh_head:
        # A fresh head sends random gradients into the encoder and undoes its pre-training: fit the head alone for
        # an epoch first (the encoder frozen, a higher rate), so the encoder then adapts to the domain only.
        frozen = [p for p in model.base_model.parameters() if p.requires_grad]
        for weight in frozen:
            weight.requires_grad_(False)
        head = [*callbacks, *tensorboard_callbacks(logged / "head")]
        _stage(model, encoded, collator, head, work_dir, params, precision, epochs=1.0, rate=HEAD_RATE)
        for weight in frozen:
            weight.requires_grad_(True)
        head_only = masked_lm_loss(model, eval_batches)
    callbacks = [*callbacks, *tensorboard_callbacks(logged / "encoder")]
    trainer = _stage(
        model, encoded, collator, callbacks, work_dir, params, precision, epochs=spec.epochs, rate=spec.learning_rate
    )
    seconds = time.monotonic() - started
    after = masked_lm_loss(trainer.model, eval_batches)
    folder = work_dir / DOMAIN_MODEL
    trainer.model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return str(folder), {
        "texts": len(texts),
        "held_out": n_held,
        "epochs": spec.epochs,
        "steps": trainer.state.global_step,
        "wall_seconds": round(seconds, 2),
        "fresh_head": fresh_head,
        "mlm_loss_before": round(before, 4),
        "mlm_loss_head_only": None if head_only is None else round(head_only, 4),
        "mlm_loss_after": round(after, 4),
    }


def _stage(
    model: Any,
    encoded: datasets.Dataset,
    collator: Any,
    callbacks: list,
    work_dir: Path,
    params: TrainingParams,
    precision: str,
    *,
    epochs: float,
    rate: float,
) -> Trainer:
    device = device_name()
    args = TrainingArguments(
        output_dir=str(work_dir / "domain-checkpoints"),
        num_train_epochs=epochs,
        learning_rate=rate,
        per_device_train_batch_size=params.batch_size,
        warmup_steps=0.06,
        weight_decay=params.weight_decay,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="steps",
        logging_steps=10,
        seed=params.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=device == "cpu",
        report_to="none",  # TensorBoard joins as a callback that knows the job's folder: see tensorboard_callbacks
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=encoded, data_collator=collator, callbacks=callbacks)
    trainer.train()
    return trainer


def _encode(tokenizer: Any, texts: list[str], max_length: int) -> datasets.Dataset:
    def encode(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(list(batch["text"]), truncation=True, max_length=max_length, return_special_tokens_mask=True)

    return datasets.Dataset.from_dict({"text": texts}).map(encode, batched=True, remove_columns=["text"])


def _fixed_masks(tokenizer: Any, texts: list[str], max_length: int, collator: Any, seed: int, size: int = 32) -> list:
    # The held-out texts are masked once, with a fixed seed, so that the loss before and after sees the same masks.
    encoded = _encode(tokenizer, texts, max_length)
    rows = [encoded[i] for i in range(len(encoded))]
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return [collator(rows[i : i + size]) for i in range(0, len(rows), size)]
    finally:
        torch.random.set_rng_state(state)


def masked_lm_loss(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]]) -> float:
    """Mean cross-entropy over the masked tokens of fixed batches."""
    device = next(model.parameters()).device
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            masked = int((batch["labels"] != -100).sum())
            if masked:
                total += float(model(**batch).loss) * masked
                count += masked
    return total / count if count else math.nan
