"""Tiny untrained task models built from the packaged MiniLM config: prediction and evaluation run without training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def tiny_encoder(folder: Path, head: str, labels: list[str], *, seed: int = 0) -> Path:
    """A one-layer MiniLM with a fresh `head` ('sequence' or 'token') for `labels`, saved with its tokenizer."""
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )

    from engine.catalog import resolve_model

    base = resolve_model("minilm-l6")
    config = AutoConfig.from_pretrained(
        base,
        num_hidden_layers=1,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    torch.manual_seed(seed)
    classes = {"sequence": AutoModelForSequenceClassification, "token": AutoModelForTokenClassification}
    model = classes[head].from_config(config)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return folder


@pytest.fixture
def encoder_factory(tmp_path: Path):
    def make(head: str, labels: list[str], name: str = "model") -> Path:
        return tiny_encoder(tmp_path / "run" / name, head, labels)

    return make
