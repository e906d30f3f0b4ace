"""The task interface: each task supplies its data, model head, collator, metrics and report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import datasets
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from engine.files import atomic_dir
from engine.spec import JobSpec


@dataclass
class Prepared:
    """Tokenized splits ready for the Trainer, the label names, the data summary, and the task's raw data."""

    train: datasets.Dataset
    validation: datasets.Dataset
    labels: list[str]
    summary: dict
    raw: Any  # what the task needs again for its report (test texts, gold labels, training split for a baseline)


class TaskRecipe(Protocol):
    """One fine-tuning task; `engine.train.train` calls these in order."""

    name: str
    metric_for_best_model: str  # a key of compute_metrics' result, without the "eval_" prefix
    greater_is_better: bool

    def inspect(self, spec: JobSpec, tokenizer: PreTrainedTokenizerBase) -> dict:
        """The validation summary of the job's data, without tokenizing it for training."""
        ...

    def prepare(self, spec: JobSpec, tokenizer: PreTrainedTokenizerBase) -> Prepared:
        """Load, validate, split and tokenize the data; raise DataError for unusable input."""
        ...

    def build_model(self, spec: JobSpec, model_path: str, labels: list[str]) -> PreTrainedModel:
        """The pretrained model with a fresh head for `labels`, label names stored in its config."""
        ...

    def collator(self, tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None) -> Any:
        """Pads each batch to its own longest example."""
        ...

    def compute_metrics(self, labels: list[str]) -> Any:
        """Trainer `compute_metrics` for the validation split."""
        ...

    def report(
        self,
        spec: JobSpec,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        prepared: Prepared,
        train_info: dict,
    ) -> dict:
        """The test-split report (report.json schema) of the trained model."""
        ...

    def render_markdown(self, report: dict) -> str:
        """report.md for this task's report."""
        ...

    def save(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, output_dir: Path) -> Path:
        """Write the trained model (Hugging Face format) into output_dir; return the folder to load it from."""
        ...


def save_model_folder(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, output_dir: Path) -> Path:
    """model/ with weights (safetensors), config with label names, and tokenizer, written atomically."""
    final = output_dir / "model"
    with atomic_dir(final) as partial:
        model.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
    return final
