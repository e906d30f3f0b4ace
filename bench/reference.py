"""The reference recipe the speed benchmarks compare the product with: a plain transformers Trainer as a
practitioner writes it (fp32, dynamic padding by the caller's collator, length-grouped batches, no evaluation, no
checkpoints), seeded before the model is built so its new head starts the same in every run."""

from __future__ import annotations

from typing import Any

SEED = 42


def seed_everything(seed: int = SEED) -> None:
    """Seed before building the model: the Trainer seeds only at its own start, after the head was drawn."""
    import transformers

    transformers.set_seed(seed)


def plain_trainer_args(output_dir: Any, *, epochs: float, learning_rate: float, batch_size: int, seed: int = SEED):
    """TrainingArguments of the reference: fp32, group_by_length, no evaluation, saving or logging."""
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        train_sampling_strategy="group_by_length",
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        seed=seed,
    )
