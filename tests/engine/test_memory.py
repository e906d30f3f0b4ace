"""The peak-memory estimate moves the way the knobs move memory, and warns with what to change."""

from __future__ import annotations

import json
from pathlib import Path

from engine.memory import GB, estimate, fit_warning, model_shape
from engine.params import TrainingParams


def _peak(**knobs) -> float:
    shape = model_shape("gemma3-270m")
    return estimate(shape, TrainingParams(**knobs), causal_lm=True, half_precision=False)


def test_each_memory_knob_lowers_the_estimate_it_should():
    base = _peak(batch_size=16, max_length=512)
    accumulated = _peak(batch_size=4, gradient_accumulation_steps=4, max_length=512)
    assert accumulated.activations == base.activations / 4 and accumulated.training_state == base.training_state
    checkpointed = _peak(batch_size=16, max_length=512, gradient_checkpointing=True)
    assert checkpointed.activations < base.activations and checkpointed.weights == base.weights
    lora = _peak(batch_size=16, max_length=512, method="lora")
    assert lora.training_state < base.training_state / 5
    assert _peak(batch_size=16, max_length=512, optimizer="adafactor").training_state < base.training_state
    assert base.peak > 10 * GB  # 16 x 512 tokens of logits over a 262k vocabulary
    warning = fit_warning(base, free=8 * GB)
    assert "only 8.0 GB is free" in warning and "gradient checkpointing" in warning and "LoRA" in warning
    assert fit_warning(_peak(batch_size=1, max_length=64), free=8 * GB) == ""


def test_a_local_folder_is_sized_from_its_config(tmp_path: Path):
    config = {"num_hidden_layers": 12, "hidden_size": 768, "vocab_size": 30522}
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    shape = model_shape(str(tmp_path))
    assert (shape.layers, shape.hidden, shape.vocab) == (12, 768, 30522)
    assert 100e6 < shape.parameters < 120e6  # BERT-base: about 110M
    assert model_shape(str(tmp_path / "missing")) is None and model_shape("minilm-l6").hidden == 384
